"""One trace from the HTTP request to the device and back: spans received over OTLP/HTTP."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.client import LbaasClient, authenticated
from tests.support.haproxy import PORT, Device
from tests.support.stack import Agent, Api, eventually, free_port, isolated, running

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: bytes
    span_id: bytes
    parent_id: bytes


@asynccontextmanager
async def otlp_receiver() -> AsyncIterator[tuple[str, list[Span]]]:
    """An OTLP/HTTP endpoint on 127.0.0.1 that keeps every span it is sent."""
    spans: list[Span] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = next(
                    int(line.split(":", 1)[1])
                    for line in lines
                    if line.lower().startswith("content-length:")
                )
                request = ExportTraceServiceRequest.FromString(await reader.readexactly(length))
                for resource in request.resource_spans:
                    attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
                    for scope in resource.scope_spans:
                        spans.extend(
                            Span(
                                attributes.get("service.name", ""),
                                span.name,
                                span.trace_id,
                                span.span_id,
                                span.parent_span_id,
                            )
                            for span in scope.spans
                        )
                body = ExportTraceServiceResponse().SerializeToString()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}", spans
    finally:
        server.close()
        await server.wait_closed()


async def test_one_create_is_one_trace_from_the_request_to_the_device(log_dir: Path) -> None:
    async with otlp_receiver() as (endpoint, spans), isolated() as isolation:
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        api = Api({**isolation.env(), **otel}, log_dir)
        agent = Agent({**isolation.agent_env(), **otel}, log_dir, "agent-traced")
        device = Device(log_dir, environment=otel)
        try:
            async with running(api, agent, device), authenticated(api.url) as http:
                api.start()
                agent.start()
                device.start()
                await api.wait_ready("/readyz")
                await device.wait_ready()
                client = LbaasClient(http)
                registered = await client.create_device(**device.registration())
                listener = {"protocol": "HTTP", "protocol_port": PORT}
                created = await client.create_lb(registered, listeners=[listener])
                assert created.status_code == 202, created.text
                await client.wait_lb(created.json()["loadbalancer"]["id"], ("ACTIVE",))

                def of(service: str, start: str) -> list[Span]:
                    return [s for s in spans if s.service == service and s.name.startswith(start)]

                async def all_four() -> list[Span] | None:
                    request = of("lbaas-api", "POST /v2/lbaas/loadbalancers")
                    if not request:
                        return None
                    trace = [s for s in spans if s.trace_id == request[0].trace_id]
                    services = {(s.service, s.name.split(" ")[0]) for s in trace}
                    wanted = {
                        ("lbaas-api", "POST"),
                        ("lbaas-agent", "apply"),
                        ("lbaas-device", "PUT"),
                        ("lbaas-api", "apply"),
                    }
                    return trace if wanted <= services else None

                trace = await eventually(all_four, timeout=20, what="the spans of one create")
        finally:
            device.purge()
    by_id = {span.span_id: span for span in trace}

    def ancestors(span: Span) -> list[Span]:
        found = []
        while span.parent_id:
            span = by_id[span.parent_id]
            found.append(span)
        return found

    request = next(s for s in trace if s.name.startswith("POST /v2/lbaas/loadbalancers"))
    applied = next(s for s in trace if s.service == "lbaas-agent")
    put = next(s for s in trace if s.service == "lbaas-device" and s.name.startswith("PUT"))
    result = next(s for s in trace if s.name == "apply result")
    assert request.parent_id == b""
    assert ancestors(applied)[-1] == request
    assert applied in ancestors(put)
    assert by_id[result.parent_id] == applied

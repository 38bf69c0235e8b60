"""The options beyond the baseline that the ``haproxy`` provider announces, with real traffic:
PROXY and PROXYV2 pools, SOURCE_IP_PORT, and the headers a listener inserts.

The backends here answer with what HAProxy told them: the PROXY protocol header it sent
first (v1 or v2, decoded) and the request's headers, so each test compares them with the
client's own address and port.
"""

import asyncio
import ipaddress
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.test_haproxy import hits
from tests.support.client import LbaasClient
from tests.support.haproxy import PORT, Backend, create_web, member_body
from tests.support.stack import free_port

pytestmark = pytest.mark.slow

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


class TellingBackend:
    """An HTTP/1.1 server whose answer to each request is JSON: ``proxy`` (the PROXY header
    of the connection, decoded, or None) and ``headers`` (the request's, lower-cased)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            proxy, head = await _proxy_header(reader)
            while True:
                head += await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                body = json.dumps({"proxy": proxy, "headers": headers}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                head = b""
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def _proxy_header(reader: asyncio.StreamReader) -> tuple[dict[str, Any] | None, bytes]:
    """The connection's PROXY header (v1: its words; v2: source and destination), and the
    bytes read after it (the start of the request when there is no header)."""
    start = await reader.readexactly(12)
    if start.startswith(b"PROXY "):
        line = start + await reader.readuntil(b"\r\n")
        words = line.decode().split()
        return {"version": 1, "source": f"{words[2]}:{words[4]}", "line": words}, b""
    if start == V2_SIGNATURE:
        command, family, length = struct.unpack("!BBH", await reader.readexactly(4))
        payload = await reader.readexactly(length)
        assert family == 0x11, f"not TCP over IPv4: {family:#x}"
        source, destination, sport, dport = struct.unpack("!4s4sHH", payload[:12])
        return {
            "version": 2,
            "command": command,
            "source": f"{ipaddress.IPv4Address(source)}:{sport}",
            "destination": f"{ipaddress.IPv4Address(destination)}:{dport}",
        }, b""
    return None, start


@pytest.fixture
async def teller() -> AsyncIterator[TellingBackend]:
    backend = TellingBackend()
    await backend.start()
    yield backend
    await backend.stop()


async def _told(vip: str) -> tuple[dict[str, Any], str]:
    """One request on a connection of our own: what the backend was told, and our
    ``address:port``."""
    reader, writer = await asyncio.open_connection(vip, PORT)
    try:
        address, port = writer.get_extra_info("sockname")[:2]
        writer.write(b"GET /told HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    told: dict[str, Any] = json.loads(body)
    return told, f"{address}:{port}"


async def _web(
    client: LbaasClient, registered: dict[str, Any], backend: Any, **pool: Any
) -> dict[str, Any]:
    return await create_web(
        client,
        registered,
        [],
        pool={"members": [member_body(backend)], "healthmonitor": None, **pool},
    )


@pytest.mark.parametrize("protocol", ["PROXY", "PROXYV2"])
async def test_proxy_pools_tell_the_members_who_the_client_is(
    client: LbaasClient,
    registered: dict[str, Any],
    teller: TellingBackend,
    announced: None,
    protocol: str,
) -> None:
    lb = await _web(client, registered, teller, protocol=protocol)
    try:
        told, us = await _told(lb["vip_address"])
        proxy = told["proxy"]
        assert proxy is not None, told
        assert proxy["source"] == us
        if protocol == "PROXY":
            assert proxy["version"] == 1
            assert proxy["line"][:2] == ["PROXY", "TCP4"]
            assert proxy["line"][3:6:2] == [lb["vip_address"], str(PORT)]
        else:
            assert proxy["version"] == 2
            assert proxy["command"] == 0x21  # version 2, PROXY (not LOCAL)
            assert proxy["destination"] == f"{lb['vip_address']}:{PORT}"
    finally:
        await _delete(client, lb)


async def test_an_http_pool_sends_no_proxy_header(
    client: LbaasClient, registered: dict[str, Any], teller: TellingBackend
) -> None:
    lb = await _web(client, registered, teller)
    try:
        told, _ = await _told(lb["vip_address"])
        assert told["proxy"] is None
    finally:
        await _delete(client, lb)


CLIENT_ADDRESS = ("X-Forwarded-IP", "X-Client-IP", "X-Real-IP")


async def test_inserted_headers_say_the_client_address_the_port_and_the_protocol(
    client: LbaasClient, registered: dict[str, Any], teller: TellingBackend, announced: None
) -> None:
    lb = await _web(client, registered, teller)
    listener_id = lb["listeners"][0]["id"]
    try:
        told, _ = await _told(lb["vip_address"])
        names = ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", *CLIENT_ADDRESS)
        assert not {name.lower() for name in names} & set(told["headers"])
        headers = dict.fromkeys(names, "true")
        response = await client.http.put(
            f"/v2/lbaas/listeners/{listener_id}", json={"listener": {"insert_headers": headers}}
        )
        assert response.status_code == 202, response.text
        await client.wait_lb(lb["id"], ("ACTIVE",))
        told, us = await _told(lb["vip_address"])
        assert told["headers"]["x-forwarded-for"] == us.rsplit(":", 1)[0]
        assert told["headers"]["x-forwarded-port"] == str(PORT)
        assert told["headers"]["x-forwarded-proto"] == "http"
        for name in CLIENT_ADDRESS:
            assert told["headers"][name.lower()] == us.rsplit(":", 1)[0], name
    finally:
        await _delete(client, lb)


async def test_source_ip_port_keeps_a_connection_on_one_member_and_spreads_connections(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend], announced: None
) -> None:
    lb = await create_web(client, registered, backends, pool={"lb_algorithm": "SOURCE_IP_PORT"})
    url = f"http://{lb['vip_address']}:{PORT}/"
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            one_connection = await hits(url, 20, http=http, fresh=False)
        assert len(one_connection) == 1, one_connection
        fresh = await hits(url, 30)
        assert len(fresh) > 1, fresh
    finally:
        await _delete(client, lb)


async def _delete(client: LbaasClient, lb: dict[str, Any]) -> None:
    response = await client.http.delete(
        f"/v2/lbaas/loadbalancers/{lb['id']}", params={"cascade": "true"}
    )
    assert response.status_code == 202, response.text
    await client.wait_gone(lb["id"])

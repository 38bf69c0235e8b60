"""OpenTelemetry traces across the services: one trace from the HTTP request to the device.

The trace context travels as W3C ``traceparent`` in the places a change goes
through: HTTP headers into the API, the ``Command`` to the agent, HTTP headers
from the agent to ``lbaas-device``, and the ``Result`` back to the API.
FastAPI makes the HTTP server spans of the API and of ``lbaas-device`` itself
(in the trace a request's ``traceparent`` names); the agent and the result
consumer make theirs here.

Spans are exported over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, with the standard ``OTEL_*``
settings; otherwise no SDK is installed and every span is OpenTelemetry's
no-op: tracing then costs nothing.
"""

import os

from opentelemetry import propagate, trace
from opentelemetry.context import Context

TRACER_NAME = "lbaas"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def configure_tracing(service_name: str) -> None:
    """Export this process's spans when an OTLP endpoint is configured; else do nothing."""
    if not any(os.environ.get(name) for name in _ENDPOINTS):
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def shutdown_tracing() -> None:
    """Flush the spans not exported yet (a no-op without an SDK)."""
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_context() -> dict[str, str]:
    """The current span's context as W3C headers (empty when no span is recording)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_of(carrier: dict[str, str]) -> Context:
    """The span context a message or request carries, to start child spans in."""
    return propagate.extract(carrier)

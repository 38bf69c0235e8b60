"""JSON log lines on stderr, one object per line, with the context fields we search by.

``request_id`` comes from the log call's ``extra`` or, when it has none, from
:data:`REQUEST_ID`, which the API sets for the request (and the agent for the
command) being handled.
"""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator

CONTEXT_FIELDS = (
    "request_id",
    "op_id",
    "loadbalancer_id",
    "device_id",
    "generation",
    "agent_id",
    "queue",
)
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def _known_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level


LogLevel = Annotated[str, AfterValidator(_known_level)]
"""A ``logging`` level name, in any case, for a settings field."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is None and field == "request_id":
                value = REQUEST_ID.get()
            if value is not None:
                line[field] = str(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Both log every failed reconnect at ERROR during an outage; our own lines say it once.
    quiet = logging.DEBUG if level == "DEBUG" else logging.CRITICAL
    for noisy in ("aiormq", "aio_pika"):
        logging.getLogger(noisy).setLevel(quiet)
    # httpx logs every request at INFO (the agent reads each device every few seconds).
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)

"""Structured logs: one JSON object per line (event name, key-values, level, time)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from app import log_safety


class JsonFormatter(logging.Formatter):
    """``{"at", "level", "logger", "event", …}``; ``event`` is the message's first word."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, _, rest = message.partition(" ")
        payload: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event,
        }
        for pair in rest.split(" "):
            key, sep, value = pair.partition("=")
            if sep and key:
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload).decode()


def configure_logging(level: str) -> None:
    """Send StoreOps logs to stderr as JSON lines; no log record of the process carries data."""
    log_safety.install()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("storeops")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False

"""Structured logs: one JSON object per line, each carrying the request ID it belongs to."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid

#: The ID of the request being served (``-`` outside requests).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("facelab_request_id", default="-")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

logger = logging.getLogger("facelab.serve")


def new_request_id(given: str | None = None) -> str:
    """A client's ``X-Request-ID`` when it is short and plain, else a fresh random one."""
    if given and _SAFE_ID.match(given):
        return given
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id", ...extra fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        d = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            d.update(fields)
        if record.exc_info:
            d["exc"] = self.formatException(record.exc_info)
        return json.dumps(d, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (it may be swapped, e.g. by test capture)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(level: str = "info", stream=None) -> None:
    """Send facelab.serve (and uvicorn's error) logs to ``stream`` (default: stderr) as JSON lines."""
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("facelab.serve", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(level.upper())
        lg.propagate = False


def log(level: int, msg: str, **fields) -> None:
    logger.log(level, msg, extra={"fields": fields})


__all__ = ["JsonFormatter", "log", "logger", "new_request_id", "request_id", "setup_logging"]

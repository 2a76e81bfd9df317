"""Logging of the ``coopfed`` processes: text for people, JSON lines for collectors.

``--log-format json`` (``COOPFED_LOG_FORMAT=json``) writes one JSON object a
line on stderr: ``time`` (UTC, RFC 3339), ``level``, ``logger``, ``message``,
then every field passed as ``extra=`` and ``exc`` (the traceback) when there is
one.  ``request_log_middleware`` logs every answer with a 5xx status (aiohttp's
access log stays off: a busy inbox would write a line per delivery).
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from federation.errors import Handler

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The attributes every LogRecord has: anything else on a record came from ``extra=``.
RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

http_log = logging.getLogger("coopfed.http")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in RECORD_ATTRIBUTES and not key.startswith("_") and key not in data:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(data, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(log_format: str = "text", *, verbose: bool = False) -> None:
    """Send the root logger's records to stderr in ``log_format`` (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log the requests that end in a 5xx answer, with what a log search needs."""
    started = time.monotonic()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 500:
            _log_failure(request, exc.status, started)
        raise
    if response.status >= 500:
        _log_failure(request, response.status, started)
    return response


def _log_failure(request: web.Request, status: int, started: float) -> None:
    http_log.error(
        "%s %s answered %d",
        request.method,
        request.path,
        status,
        extra={
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "remote": request.remote,
            "user_agent": request.headers.get("User-Agent", ""),
        },
    )

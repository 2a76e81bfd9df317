"""HTTP errors as JSON, for every route of the node.

Routes raise ``ApiError`` (or aiohttp's HTTP exceptions); the middleware turns
both into ``{"error": ..., "reason": ...}`` with the right status, and turns an
unexpected exception into a 500 without leaking its text.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import orjson
from aiohttp import web

log = logging.getLogger(__name__)

# What asyncpg raises while PostgreSQL is down or restarting.
DATABASE_DOWN: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    ConnectionRefusedError,
    FileNotFoundError,  # the unix socket is gone while the server is stopped
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ReasonError(Exception):
    """A failure with a stable machine ``reason`` and a human ``detail``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


class ApiError(Exception):
    """An error a client caused, or one it should know of (status < 500 or 503)."""

    def __init__(
        self,
        status: int,
        error: str,
        *,
        reason: str = "",
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> web.Response:
        response = error_response(self.status, self.error, self.reason, **self.extra)
        response.headers.update(self.headers)
        return response


def json_response(
    data: Any,
    *,
    status: int = 200,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type=content_type, headers=headers
    )


def error_response(status: int, error: str, reason: str = "", **extra: Any) -> web.Response:
    body: dict[str, Any] = {"error": error}
    if reason:
        body["reason"] = reason
    body.update(extra)
    return json_response(body, status=status)


# PostgreSQL text cannot hold U+0000 (nor a lone surrogate): input that reaches a
# query with one is the client's error, not the server's.
UNSTORABLE_TEXT: tuple[type[BaseException], ...] = (
    asyncpg.CharacterNotInRepertoireError,
    asyncpg.UntranslatableCharacterError,
)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if "\x00" in request.path or "\x00" in request.query_string:
        return error_response(400, "U+0000 is not allowed in a URL", "bad_url")
    try:
        return await handler(request)
    except UNSTORABLE_TEXT as exc:
        log.info("unstorable text in %s %s: %r", request.method, request.path, exc)
        return error_response(400, "the request holds text that cannot be stored", "bad_input")
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        reason = exc.reason or "error"
        response = error_response(exc.status, reason.lower())
        for name in ("Allow", "Location", "Retry-After"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except ConnectionResetError as exc:
        # The client went away mid-body (aiohttp: "Connection lost"): its fault, and
        # nobody is left to read an answer.  One quiet line, no traceback.
        if request.transport is not None and not request.transport.is_closing():
            return _internal(request, exc)  # not our client's connection
        log.info("client disconnected during %s %s", request.method, request.path)
        return error_response(400, "the client disconnected", "client_disconnected")
    except DATABASE_DOWN as exc:
        log.warning("database unavailable for %s %s: %r", request.method, request.path, exc)
        return error_response(503, "service unavailable", "database_unavailable")
    except Exception as exc:
        return _internal(request, exc)


def _internal(request: web.Request, exc: BaseException) -> web.Response:
    log.exception("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, "internal error")

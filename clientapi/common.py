"""What every endpoint of the client API shares: errors, parameters, paging.

Errors are Mastodon's: ``{"error": "..."}`` with the status Mastodon uses.
Parameters come as a query string, a form (Mastodon.py, most apps) or JSON
(web apps); lists as ``name[]``.  Paging follows Mastodon: ``max_id``,
``since_id``, ``min_id`` and ``limit``, and a ``Link`` header with ``next``
(older) and ``prev`` (newer) pages.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from federation.context import NODE
from federation.errors import json_response
from federation.store import Paging
from outbox.errors import ActionError, InvalidInput, status_of

NOT_FOUND = "Record not found"
TRUE = frozenset({"1", "true", "on", "yes", "t"})

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MastoError(Exception):
    """An error answer: status, Mastodon's ``error`` text, optional headers and fields."""

    def __init__(
        self,
        status: int,
        error: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers or {}
        self.extra = extra


def endpoint(route: Route) -> Route:
    """Turn the API's errors (and the publishing functions' ones) into JSON answers."""

    @functools.wraps(route)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await route(request)
        except MastoError as exc:
            response = json_response({"error": exc.error, **exc.extra}, status=exc.status)
            response.headers.update(exc.headers)
            return response
        except InvalidInput as exc:
            return json_response({"error": f"Validation failed: {exc}"}, status=status_of(exc))
        except ActionError as exc:
            return json_response({"error": exc.detail}, status=status_of(exc))

    return wrapped


class Params:
    """Request parameters: the query string, then the form or JSON body over it."""

    def __init__(self, values: dict[str, list[str]]) -> None:
        self.values = values

    def get(self, name: str, default: str | None = None) -> str | None:
        found = self.values.get(name)
        return found[-1] if found else default

    def text(self, name: str, default: str = "") -> str:
        return self.get(name) or default

    def many(self, name: str) -> list[str]:
        return [v for v in self.values.get(f"{name}[]", []) + self.values.get(name, []) if v]

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        return default if value is None or value == "" else value.strip().lower() in TRUE

    def number(self, name: str) -> int | None:
        value = self.get(name)
        if value is None or value == "":
            return None
        text = value.strip()
        # ASCII digits only ("²".isdigit() is true) and within PostgreSQL's bigint.
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            raise MastoError(400, f"{name} must be a number")
        return int(text)


def _flatten(name: str, value: Any, into: dict[str, list[str]]) -> None:
    if isinstance(value, list):
        for item in value:
            _flatten(name, item, into)
    elif isinstance(value, bool):
        into.setdefault(name, []).append("true" if value else "false")
    elif isinstance(value, (str, int, float)):
        into.setdefault(name, []).append(str(value))


async def read_params(request: web.Request) -> Params:
    values: dict[str, list[str]] = {}
    for key, value in request.query.items():
        values.setdefault(key, []).append(value)
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.body_exists:
        body: dict[str, list[str]] = {}
        if request.content_type == "application/json":
            try:
                document = orjson.loads(await request.read())
            except orjson.JSONDecodeError as exc:
                raise MastoError(400, f"invalid JSON: {exc}") from exc
            if not isinstance(document, dict):
                raise MastoError(400, "send a JSON object")
            for key, value in document.items():
                _flatten(str(key), value, body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for key, field in (await request.post()).items():
                if isinstance(field, str):
                    body.setdefault(key, []).append(field)
        values.update(body)
    return Params(values)


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric id from the path; anything else is a record we do not have."""
    raw = request.match_info.get(name, "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise MastoError(404, NOT_FOUND)
    return int(raw)


def paging(params: Params, *, default: int = 20, maximum: int = 40) -> Paging:
    limit = params.number("limit") or default
    return Paging(
        max_id=params.number("max_id"),
        since_id=params.number("since_id"),
        min_id=params.number("min_id"),
        limit=max(1, min(limit, maximum)),
    )


def link_header(request: web.Request, ids: Iterable[int]) -> dict[str, str]:
    """``Link`` with the next (older than the last) and prev (newer than the first) pages."""
    ordered = list(ids)
    if not ordered:
        return {}
    base = f"{request.app[NODE].urls.base}{request.path}"
    kept = [(k, v) for k, v in request.query.items() if k not in ("max_id", "min_id", "since_id")]
    older = urlencode([*kept, ("max_id", str(ordered[-1]))])
    newer = urlencode([*kept, ("min_id", str(ordered[0]))])
    return {"Link": f'<{base}?{older}>; rel="next", <{base}?{newer}>; rel="prev"'}


def json_list(request: web.Request, items: list[dict[str, Any]], ids: list[int]) -> web.Response:
    return json_response(items, headers=link_header(request, ids))

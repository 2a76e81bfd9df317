"""What an admin form posted: its text fields and, for a multipart form, its files.

A multipart body is read part by part in chunks, never whole: a file keeps at
most ``MAX_FILE`` bytes (one more byte marks it too large, and the rest is read
and dropped so the browser gets the page that says so), a text field at most
``MAX_TEXT``.  A body beyond ``MAX_BODY`` stops the reading with 413.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from federation.images import AVATAR

MAX_FILE = AVATAR.max_bytes
MAX_TEXT = 64 * 1024
MAX_BODY = 3 * MAX_FILE + 1024 * 1024
CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The request body is beyond what any admin form sends."""


@dataclass(frozen=True, slots=True)
class Upload:
    """A file of a form: its bytes (at most ``MAX_FILE``), unless it was larger."""

    filename: str
    data: bytes
    too_large: bool


async def read_form(request: web.Request) -> dict[str, str]:
    posted = await request.post()
    return {k: v for k, v in posted.items() if isinstance(v, str)}


async def _read_part(part: BodyPartReader, keep: int, read_so_far: int) -> tuple[bytes, int, bool]:
    """(up to ``keep`` bytes of the part, bytes read, whether it had more)."""
    kept = bytearray()
    total = read_so_far
    more = False
    while chunk := await part.read_chunk(CHUNK):
        total += len(chunk)
        if total > MAX_BODY:
            raise BodyTooLarge()
        room = keep - len(kept)
        if len(chunk) > room:
            more = True
        kept += chunk[: max(room, 0)]
    return bytes(kept), total, more


async def read_posted(request: web.Request) -> tuple[dict[str, str], dict[str, Upload]]:
    """The posted text fields and files (files only in a multipart form)."""
    if not request.content_type.startswith("multipart/"):
        return await read_form(request), {}
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BodyTooLarge()
    fields: dict[str, str] = {}
    files: dict[str, Upload] = {}
    reader = await request.multipart()
    read = 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            raise web.HTTPBadRequest(text="a form part without a name")
        if part.filename is None:
            data, read, more = await _read_part(part, MAX_TEXT, read)
            if more:
                raise BodyTooLarge()
            fields.setdefault(part.name, data.decode("utf-8", errors="replace"))
            continue
        data, read, more = await _read_part(part, MAX_FILE, read)
        if part.filename or data:  # a file input left empty sends an empty part
            files.setdefault(part.name, Upload(part.filename, b"" if more else data, more))
    return fields, files

"""Members' photos: ``POST /api/v1/media`` and ``/api/v2/media``, ``GET``/``PUT
/api/v1/media/:id``, and the uploads a status takes with ``media_ids``.

An upload is read part by part and refused as soon as it passes the byte limit
(never buffered whole first); ``federation.images`` checks, strips and resizes
it off the event loop; ``federation.mediafiles`` stores the files; a row keeps
what Mastodon's MediaAttachment says (description, focus, size, blurhash).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from clientapi.common import NOT_FOUND, MastoError, endpoint, path_id, read_params
from clientapi.oauth import authenticate
from federation.context import NODE, NodeContext
from federation.errors import json_response
from federation.images import MEDIA, ImageRejected, ProcessedImage, process_image
from federation.store import LocalActor, MediaRow
from federation.urls import Urls
from outbox import build

MAX_DESCRIPTION = 1500
MAX_ATTACHMENTS = 4
MAX_FIELD_BYTES = 8192  # description, focus: text fields of the form
MAX_PARTS = 8
CHUNK = 64 * 1024
DESCRIPTION_TOO_LONG = f"Validation failed: Description is too long (maximum is {MAX_DESCRIPTION})"


@dataclass(frozen=True, slots=True)
class Upload:
    raw: bytes
    fields: dict[str, str]


def parse_focus(text: str | None) -> tuple[float, float] | None:
    """Mastodon's ``focus``: "x,y", each from -1.0 to 1.0; None when not given."""
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        x, y = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        x = y = math.nan
    if not all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in (x, y)):
        raise MastoError(
            422, "Validation failed: focus must be two numbers from -1.0 to 1.0, as x,y"
        )
    return round(x, 2), round(y, 2)


def _description(text: str | None) -> str | None:
    if text is None:
        return None
    if len(text) > MAX_DESCRIPTION:
        raise MastoError(422, DESCRIPTION_TOO_LONG)
    return text.strip()


def _size(width: int, height: int) -> dict[str, Any]:
    return {
        "width": width,
        "height": height,
        "size": f"{width}x{height}",
        "aspect": round(width / height, 6) if height else None,
    }


def media_json(row: MediaRow, urls: Urls) -> dict[str, Any]:
    """Mastodon's MediaAttachment of one of our uploads."""
    url = urls.media(row.file_name)
    has_preview = row.preview_name and row.preview_width and row.preview_height
    small = (
        _size(row.preview_width or 0, row.preview_height or 0)
        if has_preview
        else _size(row.width, row.height)
    )
    return {
        "id": str(row.id),
        "type": "image",
        "url": url,
        "preview_url": urls.media(row.preview_name) if row.preview_name else url,
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "meta": {
            "original": _size(row.width, row.height),
            "small": small,
            "focus": {"x": row.focus_x, "y": row.focus_y},
        },
        "description": row.description or None,
        "blurhash": row.blurhash,
    }


def attachment_document(row: MediaRow, urls: Urls) -> dict[str, Any]:
    return build.build_attachment(
        url=urls.media(row.file_name),
        media_type=row.media_type,
        description=row.description,
        width=row.width,
        height=row.height,
        blurhash=row.blurhash,
        focus=(row.focus_x, row.focus_y),
    )


# -- reading an upload ----------------------------------------------------------------


async def _read_part(part: BodyPartReader, limit: int, too_large: Exception) -> bytes:
    """A part's bytes, read a chunk at a time; ``too_large`` once past ``limit``."""
    chunks: list[bytes] = []
    total = 0
    while chunk := await part.read_chunk(CHUNK):
        total += len(chunk)
        if total > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(request: web.Request) -> Upload:
    if request.content_type != "multipart/form-data":  # a form or JSON cannot hold a file
        raise MastoError(422, "Validation failed: File can't be blank", reason="no_file")
    megabytes = MEDIA.max_bytes // (1024 * 1024)
    too_large = MastoError(
        422, f"Validation failed: File must be at most {megabytes} MB", reason="too_large"
    )
    field_too_large = MastoError(422, "Validation failed: a form field is too long")
    reader = await request.multipart()
    raw: bytes | None = None
    fields: dict[str, str] = {}
    for _ in range(MAX_PARTS):
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise MastoError(422, "Validation failed: nested multipart is not accepted")
        if part.name == "file":
            raw = await _read_part(part, MEDIA.max_bytes, too_large)
        elif part.name in ("description", "focus", "thumbnail"):
            data = await _read_part(part, MAX_FIELD_BYTES, field_too_large)
            if part.name != "thumbnail":
                fields[part.name] = data.decode("utf-8", errors="replace")
        else:
            await _read_part(part, MAX_FIELD_BYTES, field_too_large)
    else:
        raise MastoError(422, "Validation failed: too many form fields")
    if raw is None:
        raise MastoError(422, "Validation failed: File can't be blank", reason="no_file")
    return Upload(raw, fields)


async def store_upload(node: NodeContext, member: LocalActor, upload: Upload) -> MediaRow:
    description = _description(upload.fields.get("description")) or ""
    focus = parse_focus(upload.fields.get("focus")) or (0.0, 0.0)
    try:
        processed: ProcessedImage = await asyncio.to_thread(process_image, upload.raw, MEDIA)
    except ImageRejected as exc:
        raise MastoError(422, f"Validation failed: {exc}", reason=exc.reason) from exc
    files = node.media
    name = await asyncio.to_thread(files.save, processed.image)
    preview = None
    if processed.preview is not None:
        small = processed.preview
        preview = (await asyncio.to_thread(files.save, small), small.width, small.height)
    return await node.store.create_media(
        local_actor_id=member.id,
        file_name=name,
        media_type=processed.image.media_type,
        width=processed.image.width,
        height=processed.image.height,
        preview=preview,
        blurhash=processed.blurhash,
        description=description,
        focus=focus,
    )


# -- endpoints ------------------------------------------------------------------------


async def _upload(request: web.Request) -> dict[str, Any]:
    node = request.app[NODE]
    member = (await authenticate(request, "write:media")).member
    row = await store_upload(node, member, await read_upload(request))
    return media_json(row, node.urls)


@endpoint
async def upload_v1(request: web.Request) -> web.Response:
    return json_response(await _upload(request))


@endpoint
async def upload_v2(request: web.Request) -> web.Response:
    # Mastodon answers 202 while it processes; ours is processed when it answers.
    return json_response(await _upload(request))


@endpoint
async def get_media(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:media")).member
    row = await node.store.get_media(path_id(request), member.id)
    if row is None:
        raise MastoError(404, NOT_FOUND)
    return json_response(media_json(row, node.urls))


@endpoint
async def update_media(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:media")).member
    media_id = path_id(request)
    params = await read_params(request)
    description = _description(params.get("description"))
    focus = parse_focus(params.get("focus"))
    row = await node.store.update_media(media_id, member.id, description=description, focus=focus)
    if row is None:
        # Someone else's, unknown, or already posted (Mastodon: only unattached media).
        raise MastoError(404, NOT_FOUND)
    return json_response(media_json(row, node.urls))


# -- statuses -------------------------------------------------------------------------


def media_ids_of(values: list[str]) -> list[int]:
    if len(values) > MAX_ATTACHMENTS:
        raise MastoError(
            422, f"Validation failed: a status may have at most {MAX_ATTACHMENTS} media"
        )
    ids = []
    for value in values:
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            raise MastoError(422, f"Validation failed: media {value[:40]!r} not found")
        ids.append(int(text))
    if len(set(ids)) != len(ids):
        raise MastoError(422, "Validation failed: the same media is given twice")
    return ids


async def attach(
    node: NodeContext, member: LocalActor, media_ids: list[int], object_uri: str
) -> list[MediaRow]:
    """Take the member's unattached uploads for the status ``object_uri``; 422 if any
    is not hers, unknown, or already posted."""
    if not media_ids:
        return []
    rows = await node.store.attach_media(media_ids, member.id, object_uri)
    if not rows:
        raise MastoError(
            422,
            "Validation failed: media not found: "
            + ", ".join(str(i) for i in media_ids)
            + " (each must be yours and not yet posted)",
        )
    return rows


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/media", upload_v1)
    r.add_post("/api/v2/media", upload_v2)
    r.add_get("/api/v1/media/{id}", get_media)
    r.add_put("/api/v1/media/{id}", update_media)

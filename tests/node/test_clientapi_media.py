"""Members' photos through the client API: upload (v1 and v2), describe, focus, post.

Real uploads over HTTP (multipart, as apps send them), real Pillow, real files
served at /media/, real PostgreSQL; the refusals are Mastodon's 422 with a JSON
error and leave nothing behind.
"""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import pytest
from PIL import Image

from clientapi.common import MastoError
from clientapi.media import parse_focus
from federation.images import MEDIA
from tests.support.mastoflow import api, member_token
from tests.support.nodes import RunningNode


def png(width: int = 1200, height: int = 800) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(out, "PNG")
    return out.getvalue()


def form(data: bytes, **fields: str) -> aiohttp.FormData:
    sent = aiohttp.FormData()
    sent.add_field("file", data, filename="photo.png", content_type="image/png")
    for name, value in fields.items():
        sent.add_field(name, value)
    return sent


async def upload(
    http: aiohttp.ClientSession,
    node: RunningNode,
    token: str,
    data: bytes,
    version: int = 1,
    **fields: str,
) -> tuple[int, Any]:
    status, body, _ = await api(
        http, node, "POST", f"/api/v{version}/media", token, data=form(data, **fields)
    )
    return status, body


async def media_rows(node: RunningNode) -> int:
    return int(await node.ctx.store.pool.fetchval("SELECT count(*) FROM media_attachments"))


async def test_a_photo_is_uploaded_described_and_posted(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    token = await member_token(http, node, "alice")
    # When alice uploads a photo with alt text and a focal point (v2, as apps do)
    status, media = await upload(
        http, node, token, png(), version=2, description="A crate of apples", focus="0.5,-0.25"
    )
    assert status == 200, media
    # Then it is Mastodon's MediaAttachment: an image, resized preview, size, focus, blurhash
    assert media["type"] == "image"
    assert media["description"] == "A crate of apples"
    assert media["meta"]["original"] == {
        "width": 1200, "height": 800, "size": "1200x800", "aspect": 1.5,
    }  # fmt: skip
    assert (media["meta"]["small"]["width"], media["meta"]["small"]["height"]) == (640, 427)
    assert media["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert media["blurhash"] and media["preview_url"] != media["url"]
    assert media["url"].startswith(f"{node.base_url}/media/")
    async with http.get(media["url"]) as served:
        assert served.status == 200
        assert Image.open(io.BytesIO(await served.read())).size == (1200, 800)
    # And GET gives it back; PUT changes its description and focus
    status, again, _ = await api(http, node, "GET", f"/api/v1/media/{media['id']}", token)
    assert (status, again) == (200, media)
    status, changed, _ = await api(
        http, node, "PUT", f"/api/v1/media/{media['id']}", token,
        data={"description": "Apples from the orchard", "focus": "-1,1"},
    )  # fmt: skip
    assert status == 200, changed
    assert (changed["description"], changed["meta"]["focus"]) == (
        "Apples from the orchard", {"x": -1.0, "y": 1.0},
    )  # fmt: skip

    # When she posts it
    status, posted, _ = await api(
        http, node, "POST", "/api/v1/statuses", token,
        data={"status": "Apples for the swap", "media_ids[]": media["id"]},
    )  # fmt: skip
    assert status == 200, posted
    (attached,) = posted["media_attachments"]
    assert (attached["id"], attached["description"]) == (media["id"], "Apples from the orchard")
    # Then the Note carries it as a Document with its alt text, size and blurhash
    stored = await node.ctx.store.get_object(posted["uri"])
    assert stored is not None
    assert stored.body["attachment"] == [
        {
            "type": "Document",
            "mediaType": "image/jpeg",
            "url": media["url"],
            "name": "Apples from the orchard",
            "blurhash": media["blurhash"],
            "focalPoint": [-1.0, 1.0],
            "width": 1200,
            "height": 800,
        }
    ]
    # And the sent Create defines the terms it uses
    create = await node.ctx.store.pool.fetchval(
        "SELECT body FROM outbox_activities WHERE object_id = $1 AND type = 'Create'",
        posted["uri"],
    )
    assert create["@context"][-1]["blurhash"] == "toot:blurhash"
    # And a posted photo can neither be changed nor posted again
    status, body, _ = await api(
        http, node, "PUT", f"/api/v1/media/{media['id']}", token, data={"description": "x"}
    )
    assert status == 404, body
    status, body, _ = await api(
        http, node, "POST", "/api/v1/statuses", token,
        data={"status": "again", "media_ids[]": media["id"]},
    )  # fmt: skip
    assert status == 422 and "not found" in body["error"], body
    # And the status reads the same later
    status, read, _ = await api(http, node, "GET", f"/api/v1/statuses/{posted['id']}", token)
    assert read["media_attachments"] == posted["media_attachments"]


async def test_upload_refusals_are_422_and_store_nothing(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    token = await member_token(http, node, "alice")
    # Too large: refused while reading, at the first byte past the limit
    status, body = await upload(http, node, token, b"\x89PNG" + b"\0" * MEDIA.max_bytes)
    assert (status, body["reason"]) == (422, "too_large"), body
    # Not an image
    status, body = await upload(http, node, token, b"%PDF-1.4 not a picture at all")
    assert (status, body["reason"]) == (422, "not_an_image"), body
    # No file, a bad focus, a description too long
    status, body, _ = await api(
        http, node, "POST", "/api/v1/media", token, data=aiohttp.FormData({"description": "x"})
    )
    assert status == 422 and "File" in body["error"], body
    status, body = await upload(http, node, token, png(8, 8), focus="2,0")
    assert status == 422 and "focus" in body["error"], body
    status, body = await upload(http, node, token, png(8, 8), description="d" * 1501)
    assert status == 422 and "Description" in body["error"], body
    # And nothing was stored: no row, no file
    assert await media_rows(node) == 0
    media_dir = node.ctx.settings.media_path
    assert not media_dir.exists() or not [p for p in media_dir.iterdir() if p.is_file()]


async def test_someone_elses_media_cannot_be_read_changed_or_posted(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    alice = await member_token(http, node, "alice")
    bob = await member_token(http, node, "bob")
    status, media = await upload(http, node, alice, png(16, 16), description="mine")
    assert status == 200, media
    for method, data in (("GET", None), ("PUT", {"description": "stolen"})):
        status, body, _ = await api(
            http, node, method, f"/api/v1/media/{media['id']}", bob, data=data
        )
        assert (status, body) == (404, {"error": "Record not found"})
    status, body, _ = await api(
        http, node, "POST", "/api/v1/statuses", bob,
        data={"status": "look", "media_ids[]": media["id"]},
    )  # fmt: skip
    assert status == 422 and media["id"] in body["error"], body
    # Nor more than four at once, nor an id that is not a number
    ids = [media["id"]] * 5
    status, body, _ = await api(
        http, node, "POST", "/api/v1/statuses", alice,
        data=[("status", "many"), *(("media_ids[]", i) for i in ids)],
    )  # fmt: skip
    assert status == 422 and "at most 4" in body["error"], body
    # And her media is still hers to post, unchanged
    status, again, _ = await api(http, node, "GET", f"/api/v1/media/{media['id']}", alice)
    assert (status, again["description"]) == (200, "mine")
    assert (
        await node.ctx.store.pool.fetchval(
            "SELECT object_uri FROM media_attachments WHERE id = $1", int(media["id"])
        )
        is None
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.5,-0.25", (0.5, -0.25)),
        ("-1,1", (-1.0, 1.0)),
        (" 0 , 0 ", (0.0, 0.0)),
        ("", None),
        (None, None),
    ],
)
def test_focus_is_two_numbers_from_minus_one_to_one(
    text: str | None, expected: tuple[float, float] | None
) -> None:
    assert parse_focus(text) == expected


@pytest.mark.parametrize("text", ["1.5,0", "0", "a,b", "0,0,0", "nan,0", "inf,0", "0;0"])
def test_a_bad_focus_is_refused(text: str) -> None:
    with pytest.raises(MastoError) as caught:
        parse_focus(text)
    assert caught.value.status == 422

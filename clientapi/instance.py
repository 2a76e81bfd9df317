"""What an app asks of the server before anything else: instance (v1 and v2),
the default avatar and header, and the lists coopfed does not keep (custom
emojis, filters, lists, markers…), answered empty so apps start cleanly.

The version is Mastodon's that coopfed's subset follows, ``(compatible; coopfed
X)`` after it, as GoToSocial and others do; Mastodon.py reads the first part.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from aiohttp import web

from actors.nodeinfo import REPOSITORY
from clientapi.accounts import account_view
from clientapi.media import MAX_ATTACHMENTS, MAX_DESCRIPTION
from clientapi.serializers import account_json
from clientapi.statuses import MAX_CHARACTERS
from federation.context import NODE, NodeContext
from federation.errors import json_response
from federation.images import ACCEPTED
from federation.images import MEDIA as IMAGE_RULES
from federation.version import software_version

MASTODON_VERSION = "4.2.0"
EMPTY_LISTS = (
    "/api/v1/custom_emojis",
    "/api/v1/filters",
    "/api/v2/filters",
    "/api/v1/lists",
    "/api/v1/followed_tags",
    "/api/v1/announcements",
    "/api/v1/follow_requests",
    "/api/v1/mutes",
    "/api/v1/blocks",
    "/api/v1/bookmarks",
    "/api/v1/favourites",
    "/api/v1/domain_blocks",
    "/api/v1/conversations",
    "/api/v1/scheduled_statuses",
    "/api/v1/featured_tags",
    "/api/v1/endorsements",
    "/api/v1/suggestions",
    "/api/v2/suggestions",
    "/api/v1/trends/tags",
    "/api/v1/trends/statuses",
    "/api/v1/trends/links",
    "/api/v1/instance/peers",
    "/api/v1/instance/rules",
)
PREFERENCES = {
    "posting:default:visibility": "public",
    "posting:default:sensitive": False,
    "posting:default:language": None,
    "reading:expand:media": "default",
    "reading:expand:spoilers": False,
}
STATUSES = {
    "max_characters": MAX_CHARACTERS,
    "max_media_attachments": MAX_ATTACHMENTS,
    "characters_reserved_per_url": 23,
}
MEDIA: dict[str, Any] = {
    "supported_mime_types": sorted(ACCEPTED.values()),
    "image_size_limit": IMAGE_RULES.max_bytes,
    "image_matrix_limit": IMAGE_RULES.max_input_pixels,
    "description_limit": MAX_DESCRIPTION,
    "video_size_limit": 0,
    "video_frame_rate_limit": 0,
    "video_matrix_limit": 0,
}
POLLS = {"max_options": 0, "max_characters_per_option": 0, "min_expiration": 0, "max_expiration": 0}


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A one-colour PNG (the default avatar and header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


AVATAR = solid_png(96, 96, (0x2F, 0x6F, 0x4F))
HEADER = solid_png(300, 100, (0xEE, 0xF6, 0xF1))


def version() -> str:
    return f"{MASTODON_VERSION} (compatible; coopfed {software_version()})"


def streaming_base(node: NodeContext) -> str:
    return node.urls.base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


async def _common(node: NodeContext) -> tuple[dict[str, Any], int]:
    coop = await node.coop_actor()
    contact = account_json(await account_view(node, node.urls.actor(coop.username)))
    users = len([a for a in await node.store.list_local_actors() if a.kind != "instance"])
    return contact, users


async def instance_v1(request: web.Request) -> web.Response:
    node = request.app[NODE]
    coop = await node.coop_actor()
    contact, users = await _common(node)
    return json_response(
        {
            "uri": node.urls.domain,
            "title": coop.name,
            "short_description": coop.summary,
            "description": coop.summary,
            "email": "",
            "version": version(),
            "urls": {"streaming_api": streaming_base(node)},
            "stats": {
                "user_count": users,
                "status_count": await node.store.count_local_posts(),
                "domain_count": await node.store.count_known_domains(),
            },
            "thumbnail": contact["avatar"],
            "languages": ["en"],
            "registrations": False,
            "approval_required": False,
            "invites_enabled": False,
            "configuration": {
                "accounts": {"max_featured_tags": 0},
                "statuses": STATUSES,
                "media_attachments": MEDIA,
                "polls": POLLS,
            },
            "contact_account": contact,
            "rules": [],
        }
    )


async def instance_v2(request: web.Request) -> web.Response:
    node = request.app[NODE]
    coop = await node.coop_actor()
    contact, users = await _common(node)
    return json_response(
        {
            "domain": node.urls.domain,
            "title": coop.name,
            "version": version(),
            "source_url": REPOSITORY,
            "description": coop.summary,
            "usage": {"users": {"active_month": users}},
            "thumbnail": {"url": contact["avatar"]},
            "icon": [],
            "languages": ["en"],
            "configuration": {
                "urls": {"streaming": streaming_base(node), "status": None},
                "vapid": {"public_key": ""},
                "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 0},
                "statuses": STATUSES,
                "media_attachments": MEDIA,
                "polls": POLLS,
                "translation": {"enabled": False},
            },
            "registrations": {
                "enabled": False,
                "approval_required": False,
                "message": None,
                "url": None,
            },
            "api_versions": {"mastodon": 2},
            "contact": {"email": "", "account": contact},
            "rules": [],
        }
    )


async def empty_list(request: web.Request) -> web.Response:
    return json_response([])


async def markers(request: web.Request) -> web.Response:
    return json_response({})


async def preferences(request: web.Request) -> web.Response:
    return json_response(PREFERENCES)


async def avatar(request: web.Request) -> web.Response:
    return web.Response(
        body=AVATAR, content_type="image/png", headers={"Cache-Control": "max-age=86400"}
    )


async def header(request: web.Request) -> web.Response:
    return web.Response(
        body=HEADER, content_type="image/png", headers={"Cache-Control": "max-age=86400"}
    )

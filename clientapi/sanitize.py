"""What a post says, made safe for Mastodon apps: HTML, links, tags, attachments.

Pure.  HTML goes through ``sanitize_html`` and every URL through ``safe_href``
(``federation.safehtml``: http(s) only).  The readers take an object's
ActivityStreams JSON as a peer sent it.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from clientapi.hashtags import normal, valid_name
from federation.jsonld import as_list
from federation.languages import recorded_language
from federation.safehtml import safe_href, sanitize_html

__all__ = ["safe_href", "sanitize_html"]


def link_href(value: Any, depth: int = 0) -> str | None:
    """The URL of a link: a string, or a Link/Image's ``href`` or ``url`` (nested a little)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and depth < 3:
        for key in ("href", "url"):
            for inner in as_list(value.get(key)):
                found = link_href(inner, depth + 1)
                if found:
                    return found
    return None


def media_url(value: Any) -> str | None:
    """The first http(s) URL of an image or link value; None if it has none."""
    for item in as_list(value):
        found = safe_href(link_href(item))
        if found:
            return found
    return None


def mention_hrefs(body: dict[str, Any]) -> list[str]:
    hrefs = [
        t["href"]
        for t in as_list(body.get("tag"))
        if isinstance(t, dict) and t.get("type") == "Mention" and isinstance(t.get("href"), str)
    ]
    return list(dict.fromkeys(hrefs))[:50]


def hashtags(body: dict[str, Any]) -> list[dict[str, Any]]:
    tags = []
    for tag in as_list(body.get("tag")):
        if isinstance(tag, dict) and tag.get("type") == "Hashtag":
            name = str(tag.get("name", "")).removeprefix("#")
            href = tag.get("href")
            if valid_name(name):  # Mastodon drops a tag whose name it would not write
                tags.append({"name": normal(name), "url": safe_href(href) or ""})
    return tags[:50]


# Mastodon's file extensions of each kind (MediaAttachment's *_FILE_EXTENSIONS).
EXTENSION_KINDS = {
    **dict.fromkeys(("jpg", "jpeg", "png", "gif", "webp", "heic", "heif", "avif"), "image"),
    **dict.fromkeys(("webm", "mp4", "m4v", "mov"), "video"),
    **dict.fromkeys(("ogg", "oga", "mp3", "wav", "flac", "opus", "aac", "m4a", "3gp"), "audio"),
}


def _media_type(item: dict[str, Any]) -> str:
    """The attachment's ``mediaType``, or its first URL's (a Link may carry it)."""
    for candidate in [item, *(u for u in as_list(item.get("url")) if isinstance(u, dict))]:
        value = candidate.get("mediaType")
        if isinstance(value, str) and value:
            return value.lower()
    return ""


def media_kind(item: dict[str, Any], url: str) -> str:
    """image, video, audio or unknown: by ``mediaType``, then by the URL's extension."""
    media = _media_type(item)
    kind = next((k for k in ("image", "video", "audio") if media.startswith(k + "/")), None)
    if kind is not None:
        return "gifv" if kind == "video" and item.get("type") == "Gifv" else kind
    path = urlsplit(url).path
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return EXTENSION_KINDS.get(extension, "unknown")


def _text(value: Any) -> str | None:
    return value.strip()[:1500] if isinstance(value, str) and value.strip() else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _meta(item: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    width, height = _int(item.get("width")), _int(item.get("height"))
    if width and height:
        size = {"width": width, "height": height, "size": f"{width}x{height}"}
        meta["original"] = size | {"aspect": round(width / height, 6)}
    focal = item.get("focalPoint")
    if isinstance(focal, list) and len(focal) == 2:
        x, y = focal
        if all(isinstance(v, (int, float)) and -1 <= v <= 1 for v in (x, y)):
            meta["focus"] = {"x": float(x), "y": float(y)}
    return meta


def attachments(status_id: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    """A remote post's attachments as Mastodon's MediaAttachment (not downloaded: the
    remote URL is the URL, through ``safe_href``)."""
    found: list[dict[str, Any]] = []
    for index, item in enumerate(as_list(body.get("attachment"))[:8]):
        if not isinstance(item, dict) or item.get("type") == "Link":
            continue
        url = safe_href(media_url(item.get("url")) or media_url(item.get("href")))
        if url is None:
            continue
        kind = media_kind(item, url)
        blurhash = item.get("blurhash")
        found.append(
            {
                "id": str(status_id * 100 + index),
                "type": kind,
                "url": url,
                "preview_url": url if kind == "image" else None,
                "remote_url": url,
                "preview_remote_url": None,
                "text_url": None,
                "meta": _meta(item),
                # Described by its name, else its summary.
                "description": _text(item.get("name")) or _text(item.get("summary")),
                "blurhash": blurhash if isinstance(blurhash, str) else None,
            }
        )
    return found


def first_url(body: dict[str, Any], fallback: str) -> str:
    for item in as_list(body.get("url")):
        url = link_href(item)
        if url and safe_href(url):
            return url
    return fallback


def content_html(body: dict[str, Any]) -> str:
    content = body.get("content")
    if not isinstance(content, str):
        content_map = body.get("contentMap")
        if isinstance(content_map, dict):
            first = content_map.get(recorded_language(body) or "")
            values = [first, *content_map.values()]
            content = next((v for v in values if isinstance(v, str)), None)
    if isinstance(content, str) and content.strip():
        return sanitize_html(content[:100_000])
    name = body.get("name")
    return f"<p>{html.escape(name)}</p>" if isinstance(name, str) else ""

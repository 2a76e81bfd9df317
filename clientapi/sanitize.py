"""What a post says, made safe for Mastodon apps: HTML, links, tags, attachments.

Pure.  HTML goes through ``sanitize_html`` and every URL through ``safe_href``
(``federation.safehtml``: http(s) only).  The readers take an object's
ActivityStreams JSON as a peer sent it.
"""

from __future__ import annotations

import html
from typing import Any

from federation.jsonld import as_list
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
            name = str(tag.get("name", "")).lstrip("#")
            href = tag.get("href")
            if name:
                tags.append({"name": name.lower(), "url": safe_href(href) or ""})
    return tags[:50]


def attachments(status_id: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for index, item in enumerate(as_list(body.get("attachment"))[:8]):
        if not isinstance(item, dict):
            continue
        url = safe_href(media_url(item))
        if url is None:
            continue
        media = str(item.get("mediaType", ""))
        kind = next((k for k in ("image", "video", "audio") if media.startswith(k)), "unknown")
        name = item.get("name")
        found.append(
            {
                "id": str(status_id * 100 + index),
                "type": kind,
                "url": url,
                "preview_url": url if kind == "image" else None,
                "remote_url": url,
                "preview_remote_url": None,
                "text_url": None,
                "meta": {},
                "description": name if isinstance(name, str) else None,
                "blurhash": item.get("blurhash") if isinstance(item.get("blurhash"), str) else None,
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
            content = next((v for v in content_map.values() if isinstance(v, str)), None)
    if isinstance(content, str) and content.strip():
        return sanitize_html(content[:100_000])
    name = body.get("name")
    return f"<p>{html.escape(name)}</p>" if isinstance(name, str) else ""

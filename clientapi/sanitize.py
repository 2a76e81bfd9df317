"""What a post says, made safe for Mastodon apps: HTML, links, tags, attachments.

Pure: ``sanitize_html`` keeps p, br, a (with a safe scheme), strong, em, lists
and span; scripts, styles and their content go; every attribute but a link's
href and a few microformat classes goes.  The other readers take an object's
ActivityStreams JSON as a peer sent it.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Any

from federation.jsonld import as_list

ALLOWED_TAGS = frozenset({"p", "br", "a", "strong", "em", "ul", "ol", "li", "span"})
RENAMED_TAGS = {
    "b": "strong",
    "i": "em",
    **{t: "p" for t in ("h1", "h2", "h3", "h4", "h5", "h6", "div", "blockquote", "pre")},
}
DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "template", "iframe", "object", "embed", "svg", "math", "noscript"}
    | {"textarea", "select", "head", "title"}
)
LINK_SCHEMES = ("http", "https", "mailto", "gemini", "xmpp", "magnet")
KEPT_CLASSES = frozenset({"mention", "hashtag", "u-url", "h-card", "invisible", "ellipsis"})


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skipping += 1
            return
        name = RENAMED_TAGS.get(tag, tag)
        if self.skipping or name not in ALLOWED_TAGS:
            return
        if name == "br":
            self.out.append("<br>")
            return
        self.out.append(f"<{name}{_attributes(name, dict(attrs))}>")
        self.open.append(name)

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skipping = max(0, self.skipping - 1)
            return
        name = RENAMED_TAGS.get(tag, tag)
        if self.skipping or name not in self.open:
            return
        while self.open:
            top = self.open.pop()
            self.out.append(f"</{top}>")
            if top == name:
                break

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        while self.open:
            self.out.append(f"</{self.open.pop()}>")
        return "".join(self.out)


def safe_href(value: str | None) -> str | None:
    if not value:
        return None
    value = "".join(c for c in value.strip() if c.isprintable() and not c.isspace())
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    return value if scheme in LINK_SCHEMES else None


def _attributes(name: str, attrs: dict[str, str | None]) -> str:
    kept: list[tuple[str, str]] = []
    if name == "a":
        href = safe_href(attrs.get("href"))
        if href:
            kept.append(("href", href))
        kept += [("rel", "nofollow noopener noreferrer"), ("target", "_blank")]
    if name in ("a", "span"):
        classes = [c for c in (attrs.get("class") or "").split() if c in KEPT_CLASSES]
        if classes:
            kept.append(("class", " ".join(classes)))
    return "".join(f' {k}="{html.escape(v, quote=True)}"' for k, v in kept)


def sanitize_html(text: str) -> str:
    """Only p, br, a (http(s) links), strong, em, lists and span; scripts and styles go."""
    parser = _Sanitizer()
    parser.feed(text)
    return parser.result()


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
    for item in as_list(value):
        found = link_href(item)
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
                tags.append({"name": name.lower(), "url": href if isinstance(href, str) else ""})
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

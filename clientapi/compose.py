"""A member's plain text as a post's HTML: paragraphs, links, @mentions, #hashtags.

Pure.  ``mentioned_handles`` lists the handles a text names; the caller resolves
them; ``render`` then links the ones it found (as Mastodon writes them) and
escapes everything else.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from clientapi import hashtags
from federation.safehtml import safe_href

MENTION = (
    r"(?<![\w@/])@(?P<user>[A-Za-z0-9_](?:[\w.-]*\w)?)"
    r"(?:@(?P<host>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d{1,5})?))?"
)
HASHTAG = rf"(?<![\w/&#])#(?P<tag>{hashtags.NAME})"
URL = r"(?P<url>https?://[^\s<>\"']+)"
TOKEN_RE = re.compile(f"{MENTION}|{HASHTAG}|{URL}")
MENTION_RE = re.compile(MENTION)
TRAILING = ".,;:!?)'\""
MAX_MENTIONS = 20


@dataclass(frozen=True, slots=True)
class Mentioned:
    uri: str  # the actor
    url: str  # its profile page
    username: str


def handle_of(match: re.Match[str]) -> str:
    user, host = match["user"], match["host"]
    return f"{user}@{host}".lower() if host else user.lower()


def mentioned_handles(text: str) -> list[str]:
    """``user`` or ``user@host``, lowercased, in order, each once."""
    handles = [handle_of(m) for m in MENTION_RE.finditer(text)]
    return list(dict.fromkeys(handles))[:MAX_MENTIONS]


def _mention(who: Mentioned) -> str:
    href = safe_href(who.url) or safe_href(who.uri) or ""
    return (
        f'<span class="h-card"><a href="{html.escape(href)}" class="u-url mention">'
        f"@<span>{html.escape(who.username)}</span></a></span>"
    )


def _hashtag(tag: str, tag_base: str) -> str:
    href = html.escape(tag_base + tag.lower())
    return (
        f'<a href="{href}" class="mention hashtag" rel="tag">#<span>{html.escape(tag)}</span></a>'
    )


def _line(text: str, found: dict[str, Mentioned], tag_base: str, tags: list[str]) -> str:
    out: list[str] = []
    position = 0
    for match in TOKEN_RE.finditer(text):
        out.append(html.escape(text[position : match.start()]))
        position = match.end()
        if match["url"]:
            url = match["url"].rstrip(TRAILING)
            position = match.start() + len(url)
            escaped = html.escape(url)
            out.append(f'<a href="{escaped}" rel="nofollow noopener noreferrer">{escaped}</a>')
        elif match["tag"]:
            if hashtags.valid_name(match["tag"]):
                tags.append(match["tag"])
                out.append(_hashtag(match["tag"], tag_base))
            else:
                out.append(html.escape(match.group(0)))
        elif handle_of(match) in found:
            out.append(_mention(found[handle_of(match)]))
        else:
            out.append(html.escape(match.group(0)))
    out.append(html.escape(text[position:]))
    return "".join(out)


def render(text: str, found: dict[str, Mentioned], *, tag_base: str) -> tuple[str, list[str]]:
    """The HTML of ``text`` and the hashtags it used (each once, as written)."""
    tags: list[str] = []
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))]
    body = "".join(
        "<p>" + "<br>".join(_line(line, found, tag_base, tags) for line in p.split("\n")) + "</p>"
        for p in paragraphs
        if p
    )
    first: dict[str, str] = {}
    for tag in tags:
        first.setdefault(hashtags.normal(tag), tag)  # as first written
    unique = list(first.values())[:10]
    return body, unique

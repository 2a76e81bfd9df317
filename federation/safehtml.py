"""HTML and links from others, made safe to show: the one http(s)-only link check.

Pure.  ``safe_href`` is the check every URL from a remote document (or from a
member, or from our own stored content) passes before it is written into an HTML
page or handed to an app: http and https only, nothing a browser would run.
``sanitize_html`` keeps p, br, a (with such a link), strong, em, lists and span;
scripts, styles and their content go; every attribute but a link's href and a few
microformat classes goes.  Pages sanitise stored content when they render it, not
only when it was written.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

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
LINK_SCHEMES = ("http", "https")
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


def safe_href(value: object) -> str | None:
    """``value`` if it is an http(s) URL a browser may follow, else None."""
    if not isinstance(value, str) or not value:
        return None
    value = "".join(c for c in value.strip() if c.isprintable() and not c.isspace())
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    if scheme not in LINK_SCHEMES or not value[len(scheme) + 1 :].startswith("//"):
        return None
    return value


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

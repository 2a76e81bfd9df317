"""HTML and links from others, made safe to show: the one http(s)-only link check.

Pure.  ``safe_href`` is the check every URL from a remote document (or from a
member, or from our own stored content) passes before it is written into an HTML
page or handed to an app: http and https only, nothing a browser would run.

``sanitize_html`` cleans HTML with ammonia (through nh3), keeping what Mastodon
keeps for remote posts (its ``MASTODON_STRICT`` element list): paragraphs, line
breaks, links (with such a URL), spans, inline emphasis, code and quotes, and
lists.  Any other element is dropped with its text kept; scripts, styles and
their kin go with their content; every attribute but a link's ``href`` and the
microformat classes Mastodon keeps goes.  Pages sanitise stored content when they
render it, not only when it was written.
"""

from __future__ import annotations

import re

import nh3

ALLOWED_TAGS = frozenset(
    {"p", "br", "span", "a", "del", "s", "pre", "blockquote", "code", "b", "strong"}
    | {"u", "i", "em", "ul", "ol", "li"}
)
DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "template", "iframe", "object", "embed", "svg", "math", "noscript"}
    | {"textarea", "select", "head", "title"}
)
LINK_SCHEMES = frozenset({"http", "https"})
KEPT_CLASSES = {
    "a": {"mention", "hashtag", "u-url"},
    "span": {"h-card", "invisible", "ellipsis"},
}
LINK_REL = "nofollow noopener noreferrer"
# Blocks Mastodon does not keep become paragraphs (ammonia drops a tag but cannot rename
# it, which would run "Title" and "body" together); ammonia cleans the result anyway.
_BLOCKS = re.compile(r"<(/?)(?:h[1-6]|div)(?=[\s/>])[^>]*>", re.IGNORECASE)


def safe_href(value: object) -> str | None:
    """``value`` if it is an http(s) URL a browser may follow, else None."""
    if not isinstance(value, str) or not value:
        return None
    value = "".join(c for c in value.strip() if c.isprintable() and not c.isspace())
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    if scheme not in LINK_SCHEMES or not value[len(scheme) + 1 :].startswith("//"):
        return None
    return value


def _keep_attribute(tag: str, name: str, value: str) -> str | None:
    # ammonia passes relative and protocol-relative URLs through: links are absolute http(s).
    if tag == "a" and name == "href":
        return safe_href(value)
    return value


def sanitize_html(text: str) -> str:
    """Mastodon's safe subset of ``text``; links are http(s), rel=nofollow, new tab."""
    return nh3.clean(
        _BLOCKS.sub(r"<\1p>", text),
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={"a": {"href"}},
        allowed_classes=KEPT_CLASSES,
        attribute_filter=_keep_attribute,
        url_schemes=set(LINK_SCHEMES),
        link_rel=LINK_REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )

"""The language of a post: the first key of its ``contentMap``, as the sender wrote it.

JSON objects keep their key order in Python (and in orjson), but PostgreSQL's
``jsonb`` does not: ``{"en": …, "de": …}`` is stored as ``{"de": …, "en": …}``.
So the first language is read when the document arrives, before it is stored,
and kept in the document under ``LANGUAGE_KEY`` (a key of ours: whatever a
sender wrote there is replaced).  Pure.
"""

from __future__ import annotations

import re
from typing import Any

LANGUAGE_KEY = "coopfed:language"
# A BCP 47 tag as far as apps need it: a 2-3 letter language and a few subtags.
TAG_RE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,3}$")


def first_language(obj: dict[str, Any]) -> str | None:
    """The first key of ``contentMap`` if it is a language tag; None otherwise."""
    content_map = obj.get("contentMap")
    if not isinstance(content_map, dict) or not content_map:
        return None
    first = next(iter(content_map))
    return first if isinstance(first, str) and TAG_RE.match(first) else None


def with_language(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its first language recorded (or any sender's value removed)."""
    kept = {k: v for k, v in obj.items() if k != LANGUAGE_KEY}
    language = first_language(obj)
    if language is not None:
        kept[LANGUAGE_KEY] = language
    return kept


def keep_languages(activity: dict[str, Any]) -> dict[str, Any]:
    """An incoming activity with the language of its embedded object recorded."""
    inner = activity.get("object")
    if not isinstance(inner, dict):
        return activity
    return {**activity, "object": with_language(inner)}


def recorded_language(obj: dict[str, Any]) -> str | None:
    """The language recorded at receipt, else the first key as stored (our own posts)."""
    value = obj.get(LANGUAGE_KEY)
    if isinstance(value, str) and TAG_RE.match(value):
        return value
    return first_language(obj)

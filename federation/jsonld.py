"""JSON-LD contexts and the small readers every handler needs.

coopfed never makes a peer fetch a context it may not know: the ActivityStreams
and security contexts go by URL (every implementation preloads them) and every
other term is defined inline.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
PUBLIC_ALIASES = frozenset({AS_PUBLIC, "as:Public", "Public"})

AP_CONTENT_TYPE = "application/activity+json"
LD_CONTENT_TYPE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'

ACTOR_TYPES = frozenset({"Application", "Group", "Organization", "Person", "Service"})

EXTRA_TERMS: dict[str, Any] = {
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "toot": "http://joinmastodon.org/ns#",
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "schema": "http://schema.org#",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    "Hashtag": "as:Hashtag",
    "sensitive": "as:sensitive",
    "webfinger": {
        "@id": "https://purl.archive.org/socialweb/webfinger#webfinger",
        "@type": "xsd:string",
    },
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


def build_context(extra: dict[str, Any] | None = None) -> list[Any]:
    """The ``@context`` of everything coopfed emits."""
    # A deep copy: a caller that edits its document must not edit the shared terms.
    inline = copy.deepcopy(EXTRA_TERMS)
    if extra:
        inline.update(extra)
    return [AS_CONTEXT, SECURITY_CONTEXT, inline]


def as_list(value: Any) -> list[Any]:
    """ActivityStreams allows a single value or an array for most properties."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def get_id(value: Any) -> str | None:
    """The id of a link: a string, or an object's ``id``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("id")
        return inner if isinstance(inner, str) else None
    return None


def get_ids(value: Any) -> list[str]:
    return [i for i in (get_id(v) for v in as_list(value)) if i]


def has_type(document: Any, *names: str) -> bool:
    """True when the document's ``type`` (a string or an array) names one of ``names``."""
    if not isinstance(document, dict):
        return False
    return any(t in names for t in as_list(document.get("type")) if isinstance(t, str))


def first_type(document: dict[str, Any]) -> str:
    for t in as_list(document.get("type")):
        if isinstance(t, str):
            return t
    return ""


def audience(document: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    for field in ("to", "cc", "bto", "bcc", "audience"):
        ids.extend(get_ids(document.get(field)))
    return ids


def visibility_of(document: dict[str, Any], followers_url: str | None) -> str:
    """How Mastodon reads the addressing: public, unlisted, followers or direct."""
    to = get_ids(document.get("to"))
    cc = get_ids(document.get("cc"))
    if any(t in PUBLIC_ALIASES for t in to):
        return "public"
    if any(c in PUBLIC_ALIASES for c in cc):
        return "unlisted"
    if followers_url and followers_url in to:
        return "followers"
    return "direct"


def contains_nul(value: Any) -> bool:
    """Whether a string or key anywhere in decoded JSON holds U+0000, which PostgreSQL
    cannot store (in jsonb or text): such a document must be refused, not stored."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_time(value: Any) -> datetime | None:
    """An ``xsd:dateTime`` with its offset (``Z`` included); None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None

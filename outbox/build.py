"""Pure builders of the activities coopfed sends.

Every id, time and address comes in as an argument, so a test can compare the
exact JSON.  Nothing here reads a clock, a database or the network.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from federation.jsonld import AS_PUBLIC, build_context


def isoformat(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def isoformat_precise(moment: datetime) -> str:
    """For ``updated``: peers apply an edit only when it is strictly newer, and two
    edits can come within one second (pledges arriving together)."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def addressing(*, visibility: str, followers: str, mentions: list[str]) -> dict[str, list[str]]:
    """``to``/``cc`` as Mastodon reads them: its visibility follows from the audience."""
    if visibility == "public":
        return {"to": [AS_PUBLIC], "cc": [followers, *mentions]}
    if visibility == "unlisted":
        return {"to": [followers], "cc": [AS_PUBLIC, *mentions]}
    if visibility == "followers":
        return {"to": [followers], "cc": list(mentions)}
    if visibility == "direct":
        return {"to": list(mentions), "cc": []}
    raise ValueError(f"unknown visibility {visibility!r}")


def _follow_core(follow: dict[str, Any]) -> dict[str, Any]:
    """The Follow as Mastodon embeds it in an Accept: id, type, actor, object."""
    return {k: follow[k] for k in ("id", "type", "actor", "object") if k in follow}


def build_follow(*, activity_id: str, actor: str, target: str) -> dict[str, Any]:
    return {
        "@context": build_context(),
        "id": activity_id,
        "type": "Follow",
        "actor": actor,
        "object": target,
        "to": [target],
    }


def build_accept(*, activity_id: str, actor: str, follow: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": build_context(),
        "id": activity_id,
        "type": "Accept",
        "actor": actor,
        "object": _follow_core(follow),
        "to": [follow["actor"]],
    }


def build_reject(*, activity_id: str, actor: str, follow: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": build_context(),
        "id": activity_id,
        "type": "Reject",
        "actor": actor,
        "object": _follow_core(follow),
        "to": [follow["actor"]],
    }


def build_undo(*, activity_id: str, actor: str, inner: dict[str, Any]) -> dict[str, Any]:
    """Undo with the activity embedded (Mastodon needs it for Undo(Like))."""
    embedded = {k: v for k, v in inner.items() if k != "@context"}
    return {
        "@context": build_context(),
        "id": activity_id,
        "type": "Undo",
        "actor": actor,
        "object": embedded,
        "to": embedded.get("to", []),
        "cc": embedded.get("cc", []),
    }


def build_note(
    *,
    object_id: str,
    actor: str,
    content: str,
    published: datetime,
    url: str,
    to: list[str],
    cc: list[str],
    in_reply_to: str | None = None,
    tags: list[dict[str, Any]] | None = None,
    summary: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    note: dict[str, Any] = {
        "id": object_id,
        "type": "Note",
        "attributedTo": actor,
        "content": content,
        "published": isoformat(published),
        "url": url,
        "to": to,
        "cc": cc,
        "inReplyTo": in_reply_to,
        "sensitive": False,
        "tag": tags or [],
    }
    if summary:
        note["summary"] = summary
    if attachments:
        note["attachment"] = attachments
    return note


# The terms of an attachment that ActivityStreams lacks (Mastodon's).
MEDIA_TERMS: dict[str, Any] = {
    "blurhash": "toot:blurhash",
    "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"},
}


def build_attachment(
    *,
    url: str,
    media_type: str,
    description: str,
    width: int,
    height: int,
    blurhash: str,
    focus: tuple[float, float],
) -> dict[str, Any]:
    """An uploaded image as Mastodon attaches it: a ``Document`` whose ``name`` is the
    alt text (``null`` when there is none), with its size, blurhash and focal point."""
    return {
        "type": "Document",
        "mediaType": media_type,
        "url": url,
        "name": description or None,
        "blurhash": blurhash,
        "focalPoint": [focus[0], focus[1]],
        "width": width,
        "height": height,
    }


def build_create(
    *,
    activity_id: str,
    actor: str,
    obj: dict[str, Any],
    published: datetime,
    context: list[Any] | None = None,
) -> dict[str, Any]:
    embedded = {k: v for k, v in obj.items() if k != "@context"}
    return {
        "@context": context or build_context(),
        "id": activity_id,
        "type": "Create",
        "actor": actor,
        "published": isoformat(published),
        "to": embedded.get("to", []),
        "cc": embedded.get("cc", []),
        "object": embedded,
    }


def build_update(
    *,
    activity_id: str,
    actor: str,
    obj: dict[str, Any],
    updated: datetime,
    context: list[Any] | None = None,
) -> dict[str, Any]:
    """Update with the full object and a newer ``updated`` (Mastodon drops others)."""
    embedded = {k: v for k, v in obj.items() if k != "@context"}
    embedded["updated"] = isoformat_precise(updated)
    return {
        "@context": context or build_context(),
        "id": activity_id,
        "type": "Update",
        "actor": actor,
        "to": embedded.get("to", []),
        "cc": embedded.get("cc", []),
        "object": embedded,
    }


def build_actor_update(
    *, activity_id: str, actor_document: dict[str, Any], followers: str, updated: datetime
) -> dict[str, Any]:
    """Update of our own actor, as Mastodon sends it: public, to the followers."""
    embedded = {k: v for k, v in actor_document.items() if k != "@context"}
    embedded["updated"] = isoformat_precise(updated)
    return {
        "@context": actor_document.get("@context") or build_context(),
        "id": activity_id,
        "type": "Update",
        "actor": actor_document["id"],
        "to": [AS_PUBLIC],
        "cc": [followers],
        "object": embedded,
    }


def build_delete(
    *, activity_id: str, actor: str, object_id: str, to: list[str], cc: list[str]
) -> dict[str, Any]:
    return {
        "@context": build_context(),
        "id": activity_id,
        "type": "Delete",
        "actor": actor,
        "to": to,
        "cc": cc,
        "object": {"id": object_id, "type": "Tombstone"},
    }


def build_announce(
    *,
    activity_id: str,
    actor: str,
    object_id: str,
    object_owner: str,
    followers: str,
    published: datetime,
) -> dict[str, Any]:
    return {
        "@context": build_context(),
        "id": activity_id,
        "type": "Announce",
        "actor": actor,
        "published": isoformat(published),
        "to": [AS_PUBLIC],
        "cc": [object_owner, followers],
        "object": object_id,
    }


def build_like(
    *, activity_id: str, actor: str, object_id: str, object_owner: str
) -> dict[str, Any]:
    return {
        "@context": build_context(),
        "id": activity_id,
        "type": "Like",
        "actor": actor,
        "to": [object_owner],
        "object": object_id,
    }

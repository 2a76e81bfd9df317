"""Our rows as Mastodon's JSON entities (Account, Status, Relationship, Notification).

Everything here is pure: the callers load what a view needs and pass it in.
Remote HTML is reduced to a small safe subset (``sanitize_html``) before any
app renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from actors.local import text_to_html
from clientapi.sanitize import (
    attachments,
    content_html,
    first_url,
    hashtags,
    media_url,
    safe_href,
    sanitize_html,
)
from federation.jsonld import as_list, has_type
from federation.languages import recorded_language
from federation.store import LocalActor, RemoteActor, StatusCounts, StoredObject
from federation.urls import Urls
from outbox.proposals import plain_text

# Ours -> Mastodon's names (``private`` is Mastodon's followers-only).
VISIBILITY = {
    "public": "public",
    "unlisted": "unlisted",
    "followers": "private",
    "direct": "direct",
}
FROM_MASTODON = {v: k for k, v in VISIBILITY.items()}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def day(moment: datetime) -> str:
    """Mastodon gives an account's creation as the day only."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT00:00:00.000Z")


# -- accounts -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountView:
    id: int
    uri: str
    username: str
    acct: str
    display_name: str
    note: str
    url: str
    avatar: str
    header: str
    locked: bool
    bot: bool
    group: bool
    discoverable: bool
    created_at: datetime
    followers_count: int = 0
    following_count: int = 0
    statuses_count: int = 0
    last_status_at: datetime | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)


def local_account_view(
    actor: LocalActor,
    urls: Urls,
    account_id: int,
    *,
    avatar: str,
    header: str,
    followers: int,
    following: int,
    statuses: int,
    last_status_at: datetime | None,
) -> AccountView:
    return AccountView(
        id=account_id,
        uri=urls.actor(actor.username),
        username=actor.username,
        acct=actor.username,
        display_name=actor.name,
        note=text_to_html(actor.summary),
        url=urls.profile_page(actor.username),
        avatar=safe_href(actor.avatar_url) or avatar,
        header=header,
        locked=actor.manually_approves_followers,
        bot=False,
        group=False,
        discoverable=actor.discoverable,
        created_at=actor.created_at,
        followers_count=followers,
        following_count=following,
        statuses_count=statuses,
        last_status_at=last_status_at,
    )


def remote_account_view(
    remote: RemoteActor,
    account_id: int,
    *,
    avatar: str,
    header: str,
    statuses: int,
    last_status_at: datetime | None,
) -> AccountView:
    doc = remote.document
    url = doc.get("url")
    published = doc.get("published")
    try:
        created = datetime.fromisoformat(str(published).replace("Z", "+00:00"))
        created = created if created.tzinfo else remote.fetched_at
    except ValueError:
        created = remote.fetched_at
    summary = doc.get("summary")
    fields = [
        (str(a.get("name", ""))[:255], sanitize_html(str(a.get("value", ""))[:2048]))
        for a in as_list(doc.get("attachment"))
        if isinstance(a, dict) and a.get("type") == "PropertyValue"
    ][:16]
    return AccountView(
        id=account_id,
        uri=remote.uri,
        username=remote.username,
        acct=f"{remote.username}@{remote.host}",
        display_name=remote.name,
        note=sanitize_html(summary[:10_000]) if isinstance(summary, str) else "",
        url=media_url(url) or safe_href(remote.uri) or "",
        avatar=media_url(doc.get("icon")) or avatar,
        header=media_url(doc.get("image")) or header,
        locked=doc.get("manuallyApprovesFollowers") is True,
        bot=has_type(doc, "Service", "Application"),
        group=has_type(doc, "Group"),
        discoverable=doc.get("discoverable") is True,
        created_at=created,
        statuses_count=statuses,
        last_status_at=last_status_at,
        fields=fields,
    )


def unknown_account_view(
    uri: str, account_id: int, *, avatar: str, header: str, now: datetime
) -> AccountView:
    """An actor we never fetched (a mention of someone unknown): what its URL tells."""
    parts = urlsplit(uri)
    username = parts.path.rstrip("/").rsplit("/", 1)[-1].lstrip("@") or parts.netloc
    return AccountView(
        id=account_id,
        uri=uri,
        username=username,
        acct=f"{username}@{parts.netloc}",
        display_name=username,
        note="",
        url=safe_href(uri) or "",
        avatar=avatar,
        header=header,
        locked=False,
        bot=False,
        group=False,
        discoverable=False,
        created_at=now,
    )


def account_json(view: AccountView) -> dict[str, Any]:
    return {
        "id": str(view.id),
        "username": view.username,
        "acct": view.acct,
        "display_name": view.display_name,
        "locked": view.locked,
        "bot": view.bot,
        "discoverable": view.discoverable,
        "indexable": view.discoverable,
        "group": view.group,
        "created_at": day(view.created_at),
        "note": view.note,
        "url": view.url,
        "uri": view.uri,
        "avatar": view.avatar,
        "avatar_static": view.avatar,
        "header": view.header,
        "header_static": view.header,
        "followers_count": view.followers_count,
        "following_count": view.following_count,
        "statuses_count": view.statuses_count,
        "last_status_at": view.last_status_at.date().isoformat() if view.last_status_at else None,
        "hide_collections": False,
        "noindex": not view.discoverable,
        "emojis": [],
        "roles": [],
        "fields": [{"name": n, "value": v, "verified_at": None} for n, v in view.fields],
    }


def credential_account_json(
    view: AccountView, *, summary: str, follow_requests: int
) -> dict[str, Any]:
    """The logged-in member, with ``source`` (what its profile was written as)."""
    return account_json(view) | {
        "source": {
            "privacy": "public",
            "sensitive": False,
            "language": None,
            "note": summary,
            "fields": [],
            "follow_requests_count": follow_requests,
        },
        "role": {"id": "-99", "name": "", "permissions": "0", "color": "", "highlighted": False},
    }


def relationship_json(
    account_id: int, *, following: bool, requested: bool, followed_by: bool, requested_by: bool
) -> dict[str, Any]:
    return {
        "id": str(account_id),
        "following": following,
        "showing_reblogs": following,
        "notifying": False,
        "languages": None,
        "followed_by": followed_by,
        "blocking": False,
        "blocked_by": False,
        "muting": False,
        "muting_notifications": False,
        "requested": requested,
        "requested_by": requested_by,
        "domain_blocking": False,
        "endorsed": False,
        "note": "",
    }


# -- statuses -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusData:
    """All that ``status_json`` needs of one stored object."""

    obj: StoredObject
    account: AccountView
    in_reply_to_id: int | None
    in_reply_to_account_id: int | None
    mentions: list[AccountView]
    counts: StatusCounts
    favourited: bool = False
    reblogged: bool = False
    viewer_is_author: bool = False
    # Our own uploads (MediaAttachment JSON); None: read the post's attachments.
    media: list[dict[str, Any]] | None = None


def status_json(data: StatusData) -> dict[str, Any]:
    obj, body = data.obj, data.obj.body
    summary = body.get("summary")
    spoiler = summary[:500] if isinstance(summary, str) else ""
    updated = obj.updated if obj.updated and obj.published and obj.updated > obj.published else None
    return {
        "id": str(obj.seq),
        "created_at": iso(obj.published or obj.updated or datetime.now(UTC)),
        "edited_at": iso(updated) if updated else None,
        "in_reply_to_id": str(data.in_reply_to_id) if data.in_reply_to_id else None,
        "in_reply_to_account_id": (
            str(data.in_reply_to_account_id) if data.in_reply_to_account_id else None
        ),
        # A content warning hides the post: Mastodon marks it sensitive too.
        "sensitive": body.get("sensitive") is True or bool(spoiler.strip()),
        "spoiler_text": spoiler,
        "visibility": VISIBILITY.get(obj.visibility, "public"),
        "language": recorded_language(body),
        "uri": obj.uri,
        "url": first_url(body, obj.uri),
        "replies_count": data.counts.replies,
        "reblogs_count": data.counts.announces,
        "favourites_count": data.counts.likes,
        "favourited": data.favourited,
        "reblogged": data.reblogged,
        "muted": False,
        "bookmarked": False,
        **({"pinned": False} if data.viewer_is_author else {}),
        "content": content_html(body),
        "filtered": [],
        "reblog": None,
        "application": None,
        "account": account_json(data.account),
        "media_attachments": (data.media if data.media is not None else attachments(obj.seq, body)),
        "mentions": [
            {"id": str(m.id), "username": m.username, "url": m.url, "acct": m.acct}
            for m in data.mentions
        ],
        "tags": hashtags(body),
        "emojis": [],
        "card": None,
        "poll": None,
    }


def deleted_status_json(status: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """What DELETE answers: the status with its ``text``, for "delete and redraft"."""
    return status | {"text": plain_text(body.get("content"))}


def reblog_json(
    *,
    reblog_id: int,
    uri: str,
    created_at: datetime,
    account: AccountView,
    original: dict[str, Any],
) -> dict[str, Any]:
    """The wrapper status of one of our boosts."""
    return original | {
        "id": str(reblog_id),
        "created_at": iso(created_at),
        "edited_at": None,
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "uri": uri,
        "url": None,
        "content": "",
        "account": account_json(account),
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "reblog": original,
        "replies_count": 0,
    }


def notification_json(
    *,
    notification_id: int,
    type: str,
    created_at: datetime,
    account: AccountView,
    status: dict[str, Any] | None,
    exchange: dict[str, Any] | None = None,
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": str(notification_id),
        "type": type,
        "created_at": iso(created_at),
        "group_key": f"ungrouped-{notification_id}",
        "account": account_json(account),
        "status": status,
    }
    if exchange is not None:
        answer["coopfed_exchange"] = exchange
    return answer

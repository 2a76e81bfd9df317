"""Our own actors: the coop (an ``Organization``) and the instance actor.

``build_actor`` is pure: the same rows and URLs give the same JSON.
``ensure_local_actors`` creates the actors and their keys on first start and
never replaces a key afterwards.
"""

from __future__ import annotations

import html
from typing import Any

from federation.jsonld import build_context
from federation.keys import dump_private_key_pem, dump_public_key_pem, generate_private_key
from federation.mediafiles import TYPES
from federation.safehtml import safe_href
from federation.settings import Settings
from federation.store import LocalActor, Store
from federation.urls import INSTANCE_ACTOR_USERNAME, Urls

DEFAULT_NAME = "Our Cooperative"
DEFAULT_SUMMARY = "A cooperative on the coopfed network."


class IdentityMismatch(Exception):
    """The data directory belongs to another coop than the settings name."""

    def __init__(self, stored: str, configured: str) -> None:
        super().__init__(
            f"this node's database belongs to the coop @{stored}; it cannot become "
            f"@{configured} (a handle never changes: peers know the coop by its URL)"
        )
        self.stored = stored
        self.configured = configured


PROFILE_SETTINGS = ("name", "summary", "avatar_url")


def settings_profile(settings: Settings) -> dict[str, str]:
    """The profile values the settings give (an empty text gives nothing)."""
    return {k: getattr(settings, k) for k in PROFILE_SETTINGS if getattr(settings, k)}


def profile_changes(coop: LocalActor, settings: Settings) -> dict[str, Any]:
    """The profile fields the settings change.

    A name, summary or avatar applies when the settings give it and it differs from
    what they gave at the last start (``settings_profile``): restarting with the same
    settings keeps what the admin edited in the browser since.  Manual approval is
    the setting itself.
    """
    remembered = coop.settings_profile or {}
    wanted: dict[str, Any] = {
        k: v for k, v in settings_profile(settings).items() if remembered.get(k) != v
    }
    wanted["manually_approves_followers"] = settings.manually_approves_followers
    return {k: v for k, v in wanted.items() if getattr(coop, k) != v}


def isoformat(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def text_to_html(text: str) -> str:
    """Plain text (a summary, a post) as peers read it: escaped HTML paragraphs."""
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def field_value_html(value: str) -> str:
    """A profile field's value as Mastodon writes it: a link when it is an http(s) URL."""
    href = safe_href(value.strip()) if value.strip().startswith(("http://", "https://")) else None
    if href is None:
        return html.escape(value)
    shown = html.escape(href.split("://", 1)[1])
    return f'<a href="{html.escape(href)}" rel="me nofollow noopener" target="_blank">{shown}</a>'


def image_json(url: str) -> dict[str, Any]:
    """``icon``/``image`` of an actor: an Image with its media type when we know it."""
    document: dict[str, Any] = {"type": "Image", "url": url}
    media_type = TYPES.get(url.rsplit(".", 1)[-1]) if "." in url.rsplit("/", 1)[-1] else None
    if media_type:
        document["mediaType"] = media_type
    return document


def build_actor(actor: LocalActor, urls: Urls) -> dict[str, Any]:
    """The ActivityPub document of a local actor, as Mastodon and GoToSocial read it."""
    if actor.kind == "instance":
        return build_instance_actor(actor, urls)
    actor_id = urls.actor(actor.username)
    document: dict[str, Any] = {
        "@context": build_context(),
        "id": actor_id,
        "type": "Organization" if actor.kind == "coop" else "Person",
        "preferredUsername": actor.username,
        "name": actor.name,
        "summary": text_to_html(actor.summary),
        "url": urls.profile_page(actor.username),
        "inbox": urls.inbox(actor.username),
        "outbox": urls.outbox(actor.username),
        "followers": urls.followers(actor.username),
        "following": urls.following(actor.username),
        "endpoints": {"sharedInbox": urls.shared_inbox},
        "publicKey": {
            "id": urls.key_id(actor.username),
            "owner": actor_id,
            "publicKeyPem": actor.public_key_pem,
        },
        "manuallyApprovesFollowers": actor.manually_approves_followers,
        "discoverable": actor.discoverable,
        "indexable": actor.discoverable,
        "published": isoformat(actor.created_at),
        "webfinger": f"{actor.username}@{urls.domain}",
        "attachment": [
            {"type": "PropertyValue", "name": f["name"], "value": field_value_html(f["value"])}
            for f in actor.fields or []
        ],
        "tag": [],
    }
    if actor.avatar_url:
        document["icon"] = image_json(actor.avatar_url)
    if actor.header_url:
        document["image"] = image_json(actor.header_url)
    return document


def build_tombstone(actor: LocalActor, urls: Urls) -> dict[str, Any]:
    """What a deleted actor's URL answers (with 410 Gone)."""
    document: dict[str, Any] = {
        "@context": build_context(),
        "id": urls.actor(actor.username),
        "type": "Tombstone",
        "formerType": "Organization" if actor.kind == "coop" else "Person",
    }
    if actor.deleted_at is not None:
        document["deleted"] = isoformat(actor.deleted_at)
    return document


def build_instance_actor(actor: LocalActor, urls: Urls) -> dict[str, Any]:
    """The node's own actor: it signs background fetches, and is served unsigned."""
    return {
        "@context": build_context(),
        "id": urls.instance_actor,
        "type": "Application",
        "preferredUsername": actor.username,
        "name": actor.name,
        "inbox": f"{urls.instance_actor}/inbox",
        "outbox": f"{urls.instance_actor}/outbox",
        "endpoints": {"sharedInbox": urls.shared_inbox},
        "publicKey": {
            "id": urls.instance_key_id,
            "owner": urls.instance_actor,
            "publicKeyPem": actor.public_key_pem,
        },
        "manuallyApprovesFollowers": True,
        "discoverable": False,
        "indexable": False,
        "published": isoformat(actor.created_at),
    }


async def ensure_local_actors(
    store: Store, settings: Settings, *, apply_profile: bool = True
) -> LocalActor:
    """Create the coop and instance actors on first start; apply profile settings.

    Returns the coop actor.  A key, once made, is kept for the life of the node.
    With ``apply_profile`` (``coopfed run``), a non-empty name, summary or avatar
    replaces the stored one, and manual approval is set as the settings say
    (its flag is the setting: a start without it turns it off).
    """
    coop = await store.get_local_actor_by_kind("coop")
    if coop is not None and coop.username != settings.username:
        raise IdentityMismatch(coop.username, settings.username)
    if coop is None:
        key = generate_private_key()
        coop = await store.create_local_actor(
            username=settings.username,
            kind="coop",
            name=settings.name or DEFAULT_NAME,
            summary=settings.summary or DEFAULT_SUMMARY,
            avatar_url=settings.avatar_url,
            manually_approves_followers=settings.manually_approves_followers,
            private_key_pem=dump_private_key_pem(key),
            public_key_pem=dump_public_key_pem(key),
        )
    elif apply_profile:
        changes = profile_changes(coop, settings)
        if changes:
            coop = await store.update_local_profile(coop.id, **changes)
    given = settings_profile(settings)
    if apply_profile and (coop.settings_profile or {}) != given:
        coop = await store.update_local_profile(coop.id, settings_profile=given)
    if await store.get_local_actor(INSTANCE_ACTOR_USERNAME) is None:
        key = generate_private_key()
        await store.create_local_actor(
            username=INSTANCE_ACTOR_USERNAME,
            kind="instance",
            name="coopfed instance actor",
            summary="",
            avatar_url="",
            manually_approves_followers=True,
            private_key_pem=dump_private_key_pem(key),
            public_key_pem=dump_public_key_pem(key),
        )
    return coop

"""Fixed ids, times and activities of the golden builder tests, shared by the tests that
validate what coopfed emits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from federation.keys import dump_private_key_pem, dump_public_key_pem
from federation.store import LocalActor
from outbox import build
from tests.support.golden import ACTOR, BASE, FOLLOWERS, PUBLIC

REMOTE = "https://mastodon.example/users/alice"
REMOTE_FOLLOW = "https://mastodon.example/2f1c7a4e-0b6e-4f55-9a51-7d6f0b1d2c3a"
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2025, 3, 1, 13, 30, 15, 987654, tzinfo=UTC)


def remote_follow() -> dict[str, Any]:
    """A Follow as Mastodon sends it (payload id, no ``to``)."""
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": REMOTE_FOLLOW,
        "type": "Follow",
        "actor": REMOTE,
        "object": ACTOR,
    }


def note(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "object_id": f"{BASE}/objects/n1",
        "actor": ACTOR,
        "content": "<p>Offer: bread</p>",
        "published": T0,
        "url": f"{BASE}/objects/n1",
        "to": [PUBLIC],
        "cc": [FOLLOWERS],
    }
    values.update(overrides)
    return build.build_note(**values)


def coop_row(key: RSAPrivateKey) -> LocalActor:
    return LocalActor(
        id=1,
        username="coop",
        kind="coop",
        name="Bread & Roses Coop",
        summary="We bake.",
        avatar_url="",
        manually_approves_followers=False,
        discoverable=True,
        private_key_pem=dump_private_key_pem(key),
        public_key_pem=dump_public_key_pem(key),
        created_at=T0,
        updated_at=T0,
    )


def sample_activities() -> dict[str, dict[str, Any]]:
    follow = build.build_follow(activity_id=f"{BASE}/activities/f1", actor=ACTOR, target=REMOTE)
    like = build.build_like(
        activity_id=f"{BASE}/activities/l1",
        actor=ACTOR,
        object_id="https://mastodon.example/users/alice/statuses/1",
        object_owner=REMOTE,
    )
    announce = build.build_announce(
        activity_id=f"{BASE}/activities/b1",
        actor=ACTOR,
        object_id="https://mastodon.example/users/alice/statuses/1",
        object_owner=REMOTE,
        followers=FOLLOWERS,
        published=T0,
    )
    return {
        "Follow": follow,
        "Accept": build.build_accept(
            activity_id=f"{BASE}/activities/a1", actor=ACTOR, follow=remote_follow()
        ),
        "Undo(Follow)": build.build_undo(
            activity_id=f"{BASE}/activities/u1", actor=ACTOR, inner=follow
        ),
        "Undo(Like)": build.build_undo(
            activity_id=f"{BASE}/activities/u2", actor=ACTOR, inner=like
        ),
        "Undo(Announce)": build.build_undo(
            activity_id=f"{BASE}/activities/u3", actor=ACTOR, inner=announce
        ),
        "Create(Note)": build.build_create(
            activity_id=f"{BASE}/objects/n1/activity", actor=ACTOR, obj=note(), published=T0
        ),
        "Update(Note)": build.build_update(
            activity_id=f"{BASE}/activities/up1", actor=ACTOR, obj=note(), updated=T1
        ),
        "Delete": build.build_delete(
            activity_id=f"{BASE}/activities/d1",
            actor=ACTOR,
            object_id=f"{BASE}/objects/n1",
            to=[PUBLIC],
            cc=[FOLLOWERS],
        ),
        "Announce": announce,
        "Like": like,
    }

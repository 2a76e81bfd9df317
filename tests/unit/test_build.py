"""Golden tests of the pure activity builders (outbox/build.py) and their addressing.

Every builder gets fixed ids and times and is compared with the exact JSON it
must produce.  ``addressing()`` is checked by reading its output back the way
Mastodon does (``jsonld.visibility_of``).

The emitted JSON is also parsed by an independent implementation,
little-boxes 0.1.0 (PyPI; it installs on Python 3.11 from a pure-Python sdist
plus wheels of pyld/lxml/requests, in a few seconds).  Its known quirks:
``parse_activity`` validates every ``actor`` through the backend's ``fetch_iri``;
it wrongly requires ``actor`` on an embedded Note (``attributedTo`` is copied in
first); it rejects list-valued ``type`` or
``actor``; and it mutates the ``@context`` it is given (a deep copy is passed).
It has no Reject class and knows no actor type but Person, so Reject and the
coop's Organization actor are checked structurally instead (see those tests).
"""

from __future__ import annotations

import copy
from datetime import timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from little_boxes import activitypub as lb
from little_boxes.errors import BadActivityError

from actors.local import build_actor
from federation.jsonld import visibility_of
from federation.keys import dump_public_key_pem, generate_private_key
from federation.urls import Urls
from outbox import build
from tests.support.golden import ACTOR, AP_CONTEXT, BASE, FOLLOWERS, PUBLIC
from tests.support.samples import (
    REMOTE,
    REMOTE_FOLLOW,
    T0,
    T1,
    coop_row,
    note,
    remote_follow,
    sample_activities,
)

NOTE_JSON: dict[str, Any] = {
    "id": f"{BASE}/objects/n1",
    "type": "Note",
    "attributedTo": ACTOR,
    "content": "<p>Offer: bread</p>",
    "published": "2025-03-01T12:00:00Z",
    "url": f"{BASE}/objects/n1",
    "to": [PUBLIC],
    "cc": [FOLLOWERS],
    "inReplyTo": None,
    "sensitive": False,
    "tag": [],
}


# -- golden JSON -------------------------------------------------------------------


def test_isoformat_is_utc_seconds_with_z() -> None:
    assert build.isoformat(T0) == "2025-03-01T12:00:00Z"
    assert build.isoformat(T1) == "2025-03-01T13:30:15Z"
    # A non-UTC time keeps its offset (still a valid xsd:dateTime).
    assert build.isoformat(T0.astimezone(timezone(timedelta(hours=2)))) == (
        "2025-03-01T14:00:00+02:00"
    )


def test_build_follow() -> None:
    activity = build.build_follow(activity_id=f"{BASE}/activities/f1", actor=ACTOR, target=REMOTE)
    assert activity == {
        "@context": AP_CONTEXT,
        "id": f"{BASE}/activities/f1",
        "type": "Follow",
        "actor": ACTOR,
        "object": REMOTE,
        "to": [REMOTE],
    }


def test_build_accept_embeds_the_follow_as_mastodon_does() -> None:
    activity = build.build_accept(
        activity_id=f"{BASE}/activities/a1", actor=ACTOR, follow=remote_follow()
    )
    assert activity == {
        "@context": AP_CONTEXT,
        "id": f"{BASE}/activities/a1",
        "type": "Accept",
        "actor": ACTOR,
        # id, type, actor, object only: the follower's @context is not echoed.
        "object": {"id": REMOTE_FOLLOW, "type": "Follow", "actor": REMOTE, "object": ACTOR},
        "to": [REMOTE],
    }


def test_build_reject() -> None:
    activity = build.build_reject(
        activity_id=f"{BASE}/activities/r1", actor=ACTOR, follow=remote_follow()
    )
    assert activity == {
        "@context": AP_CONTEXT,
        "id": f"{BASE}/activities/r1",
        "type": "Reject",
        "actor": ACTOR,
        "object": {"id": REMOTE_FOLLOW, "type": "Follow", "actor": REMOTE, "object": ACTOR},
        "to": [REMOTE],
    }


def test_build_undo_of_follow_embeds_it_without_context() -> None:
    follow = build.build_follow(activity_id=f"{BASE}/activities/f1", actor=ACTOR, target=REMOTE)
    activity = build.build_undo(activity_id=f"{BASE}/activities/u1", actor=ACTOR, inner=follow)
    assert activity == {
        "@context": AP_CONTEXT,
        "id": f"{BASE}/activities/u1",
        "type": "Undo",
        "actor": ACTOR,
        "object": {
            "id": f"{BASE}/activities/f1",
            "type": "Follow",
            "actor": ACTOR,
            "object": REMOTE,
            "to": [REMOTE],
        },
        "to": [REMOTE],
        "cc": [],
    }
    assert "@context" in follow  # the inner activity given is not modified


def test_build_undo_of_like_embeds_the_like() -> None:
    like = build.build_like(
        activity_id=f"{BASE}/activities/l1",
        actor=ACTOR,
        object_id="https://mastodon.example/users/alice/statuses/1",
        object_owner=REMOTE,
    )
    activity = build.build_undo(activity_id=f"{BASE}/activities/u2", actor=ACTOR, inner=like)
    assert activity == {
        "@context": AP_CONTEXT,
        "id": f"{BASE}/activities/u2",
        "type": "Undo",
        "actor": ACTOR,
        "object": {
            "id": f"{BASE}/activities/l1",
            "type": "Like",
            "actor": ACTOR,
            "to": [REMOTE],
            "object": "https://mastodon.example/users/alice/statuses/1",
        },
        "to": [REMOTE],
        "cc": [],
    }


def test_build_note_minimal() -> None:
    assert note() == NOTE_JSON


def test_build_note_reply_with_mention_and_content_warning() -> None:
    mention = {"type": "Mention", "href": REMOTE, "name": "@alice@mastodon.example"}
    result = note(
        to=[PUBLIC],
        cc=[FOLLOWERS, REMOTE],
        in_reply_to="https://mastodon.example/users/alice/statuses/1",
        tags=[mention],
        summary="food",
    )
    assert result == NOTE_JSON | {
        "cc": [FOLLOWERS, REMOTE],
        "inReplyTo": "https://mastodon.example/users/alice/statuses/1",
        "tag": [mention],
        "summary": "food",
    }


def test_build_create_wraps_the_note() -> None:
    activity = build.build_create(
        activity_id=f"{BASE}/objects/n1/activity",
        actor=ACTOR,
        obj={"@context": AP_CONTEXT, **note()},
        published=T0,
    )
    assert activity == {
        "@context": AP_CONTEXT,
        "id": f"{BASE}/objects/n1/activity",
        "type": "Create",
        "actor": ACTOR,
        "published": "2025-03-01T12:00:00Z",
        "to": [PUBLIC],
        "cc": [FOLLOWERS],
        "object": NOTE_JSON,
    }


def test_build_update_sends_the_full_object_with_updated() -> None:
    original = note()
    activity = build.build_update(
        activity_id=f"{BASE}/activities/up1", actor=ACTOR, obj=original, updated=T1
    )
    assert activity == {
        "@context": AP_CONTEXT,
        "id": f"{BASE}/activities/up1",
        "type": "Update",
        "actor": ACTOR,
        "to": [PUBLIC],
        "cc": [FOLLOWERS],
        # Milliseconds: two edits within one second must still be strictly newer.
        "object": NOTE_JSON | {"updated": "2025-03-01T13:30:15.987Z"},
    }
    assert original == NOTE_JSON  # the stored object is not modified


def test_create_and_update_take_an_extended_context() -> None:
    extended = [*AP_CONTEXT[:2], AP_CONTEXT[2] | {"coop": "https://coop.example/ns#"}]
    create = build.build_create(
        activity_id=f"{BASE}/objects/n1/activity",
        actor=ACTOR,
        obj=note(),
        published=T0,
        context=extended,
    )
    update = build.build_update(
        activity_id=f"{BASE}/activities/up1", actor=ACTOR, obj=note(), updated=T1, context=extended
    )
    assert create["@context"] == extended
    assert update["@context"] == extended


def test_build_delete_sends_a_tombstone() -> None:
    activity = build.build_delete(
        activity_id=f"{BASE}/activities/d1",
        actor=ACTOR,
        object_id=f"{BASE}/objects/n1",
        to=[PUBLIC],
        cc=[FOLLOWERS],
    )
    assert activity == {
        "@context": AP_CONTEXT,
        "id": f"{BASE}/activities/d1",
        "type": "Delete",
        "actor": ACTOR,
        "to": [PUBLIC],
        "cc": [FOLLOWERS],
        "object": {"id": f"{BASE}/objects/n1", "type": "Tombstone"},
    }


def test_build_announce() -> None:
    activity = build.build_announce(
        activity_id=f"{BASE}/activities/b1",
        actor=ACTOR,
        object_id="https://mastodon.example/users/alice/statuses/1",
        object_owner=REMOTE,
        followers=FOLLOWERS,
        published=T1,
    )
    assert activity == {
        "@context": AP_CONTEXT,
        "id": f"{BASE}/activities/b1",
        "type": "Announce",
        "actor": ACTOR,
        "published": "2025-03-01T13:30:15Z",
        "to": [PUBLIC],
        "cc": [REMOTE, FOLLOWERS],
        "object": "https://mastodon.example/users/alice/statuses/1",
    }


def test_build_like() -> None:
    activity = build.build_like(
        activity_id=f"{BASE}/activities/l1",
        actor=ACTOR,
        object_id="https://mastodon.example/users/alice/statuses/1",
        object_owner=REMOTE,
    )
    assert activity == {
        "@context": AP_CONTEXT,
        "id": f"{BASE}/activities/l1",
        "type": "Like",
        "actor": ACTOR,
        "to": [REMOTE],
        "object": "https://mastodon.example/users/alice/statuses/1",
    }


# -- addressing as Mastodon reads it ------------------------------------------------


@pytest.mark.parametrize(
    ("visibility", "expected"),
    [
        ("public", {"to": [PUBLIC], "cc": [FOLLOWERS, REMOTE]}),
        ("unlisted", {"to": [FOLLOWERS], "cc": [PUBLIC, REMOTE]}),
        ("followers", {"to": [FOLLOWERS], "cc": [REMOTE]}),
        ("direct", {"to": [REMOTE], "cc": []}),
    ],
)
def test_addressing_round_trips_through_visibility_of(
    visibility: str, expected: dict[str, list[str]]
) -> None:
    audience = build.addressing(visibility=visibility, followers=FOLLOWERS, mentions=[REMOTE])
    assert audience == expected
    assert visibility_of(audience, FOLLOWERS) == visibility
    # Without mentions the visibility is the same (direct then has nobody: still direct).
    bare = build.addressing(visibility=visibility, followers=FOLLOWERS, mentions=[])
    assert visibility_of(bare, FOLLOWERS) == visibility
    # And the note built from it is read the same way.
    assert visibility_of(note(**audience), FOLLOWERS) == visibility


def test_addressing_rejects_unknown_visibility() -> None:
    with pytest.raises(ValueError, match="unknown visibility 'private'"):
        build.addressing(visibility="private", followers=FOLLOWERS, mentions=[])


@pytest.mark.parametrize("alias", [PUBLIC, "as:Public", "Public"])
def test_visibility_of_accepts_every_public_alias_mastodon_accepts(alias: str) -> None:
    assert visibility_of({"to": alias, "cc": FOLLOWERS}, FOLLOWERS) == "public"
    assert visibility_of({"to": [FOLLOWERS], "cc": [alias]}, FOLLOWERS) == "unlisted"


def test_visibility_of_needs_the_exact_followers_url_for_private() -> None:
    assert visibility_of({"to": [FOLLOWERS + "/"]}, FOLLOWERS) == "direct"
    assert visibility_of({"to": [{"id": FOLLOWERS}]}, FOLLOWERS) == "followers"


# -- an independent parser: little-boxes 0.1.0 ----------------------------------------


class OfflineBackend(lb.BaseBackend):  # type: ignore[misc]
    """Answers ``fetch_iri`` for the actors these tests use; never touches the network."""

    def __init__(self, documents: dict[str, dict[str, Any]]) -> None:
        self.documents = documents

    def fetch_iri(self, iri: str) -> dict[str, Any]:
        return copy.deepcopy(self.documents[iri])


@pytest.fixture(scope="module")
def coop_key() -> RSAPrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module", autouse=True)
def offline_backend(coop_key: RSAPrivateKey) -> Any:
    remote_person = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": REMOTE,
        "type": "Person",
        "preferredUsername": "alice",
        "inbox": f"{REMOTE}/inbox",
    }
    coop = build_actor(coop_row(coop_key), Urls(BASE))
    previous = lb.BACKEND
    lb.use_backend(OfflineBackend({ACTOR: coop, REMOTE: remote_person}))
    yield
    lb.use_backend(previous)


def lb_parse(activity: dict[str, Any]) -> Any:
    """little-boxes' reading of ``activity`` (and of its embedded object, if any)."""
    given = copy.deepcopy(activity)
    inner = given.get("object")
    if isinstance(inner, dict) and inner.get("type") == "Note" and "actor" not in inner:
        inner["actor"] = inner["attributedTo"]  # its Note wrongly requires `actor`
    parsed = lb.parse_activity(given)
    if isinstance(inner, dict):
        embedded = parsed.get_object()
        assert embedded.id == inner["id"]
        assert embedded.ACTIVITY_TYPE.value == inner["type"]
    return parsed


@pytest.mark.parametrize("name", list(sample_activities()))
def test_little_boxes_parses_what_we_emit(name: str) -> None:
    activity = sample_activities()[name]
    parsed = lb_parse(activity)
    assert parsed.ACTIVITY_TYPE.value == activity["type"]
    assert parsed.id == activity["id"]
    assert parsed.actor == ACTOR  # validated through fetch_iri
    round_trip = parsed.to_dict()
    for key in ("object", "to", "cc", "published"):
        if key in activity:
            expected = activity[key]
            if key == "object" and isinstance(expected, dict) and expected["type"] == "Note":
                expected = expected | {"actor": ACTOR}
            assert round_trip[key] == expected, key


def test_little_boxes_refuses_a_wrong_activity() -> None:
    """The parser is not a rubber stamp: a Like of a Follow and an unknown actor fail."""
    like = sample_activities()["Like"]
    with pytest.raises(lb.UnexpectedActivityTypeError) as wrong_type:
        lb.parse_activity(like | {"object": {"id": f"{BASE}/x", "type": "Follow"}})
    assert wrong_type.value.message.startswith("unexpected object type Follow")
    with pytest.raises(BadActivityError) as unknown_actor:
        lb.parse_activity(like | {"actor": "https://unknown.example/users/x"})
    assert unknown_actor.value.message == (
        "failed to validate actor 'https://unknown.example/users/x'"
    )


def test_reject_is_checked_structurally() -> None:
    """little-boxes 0.1.0 has no Reject class (parse_activity says "unsupported activity
    type Reject"), so the Reject is checked to mirror the Accept it replaces, and its
    embedded Follow is parsed by little-boxes."""
    reject = build.build_reject(
        activity_id=f"{BASE}/activities/r1", actor=ACTOR, follow=remote_follow()
    )
    with pytest.raises(BadActivityError) as unsupported:
        lb.parse_activity(copy.deepcopy(reject))
    assert unsupported.value.message == "unsupported activity type Reject"
    accept = sample_activities()["Accept"]
    assert {k: v for k, v in reject.items() if k not in ("id", "type")} == {
        k: v for k, v in accept.items() if k not in ("id", "type")
    }
    follow = lb.parse_activity(copy.deepcopy(reject["object"]))
    assert (follow.id, follow.actor, follow.object) == (REMOTE_FOLLOW, REMOTE, ACTOR)


def test_organization_actor_is_checked_structurally(coop_key: RSAPrivateKey) -> None:
    """little-boxes 0.1.0 knows no actor type but Person: ``Organization`` (the coop's type,
    shown by Mastodon as a Person) is not an ActivityType there, so the actor document is
    checked against the actor rules Mastodon applies instead."""
    document = build_actor(coop_row(coop_key), Urls(BASE))
    with pytest.raises(ValueError, match="'Organization' is not a valid ActivityType"):
        lb.parse_activity(copy.deepcopy(document))
    # The same document typed Person is accepted by little-boxes.
    person = lb.parse_activity(copy.deepcopy(document) | {"type": "Person"})
    assert (person.id, person.inbox) == (ACTOR, f"{ACTOR}/inbox")
    # Mastodon's requirements on the real document.
    assert document["type"] == "Organization"
    assert document["@context"] == AP_CONTEXT
    assert document["id"] == ACTOR
    assert document["preferredUsername"] == "coop"
    assert document["inbox"] == f"{ACTOR}/inbox"
    assert document["endpoints"] == {"sharedInbox": f"{BASE}/inbox"}
    assert document["followers"] == FOLLOWERS
    assert document["publicKey"] == {
        "id": f"{ACTOR}#main-key",
        "owner": ACTOR,
        "publicKeyPem": dump_public_key_pem(coop_key),
    }
    assert document["attachment"] == []
    assert document["webfinger"] == "coop@coop.example"
    assert document["published"] == "2025-03-01T12:00:00Z"

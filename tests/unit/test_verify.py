"""Unit tests of the inbox's pure checks: read_head, is_self_delete, nesting_depth."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
import pytest

from federation.jsonld import contains_nul
from inbox.routes import MAX_DEPTH, nesting_depth
from inbox.verify import MAX_ID_LENGTH, ActivityHead, InboxRejected, is_self_delete, read_head

ALICE = "https://m.example/users/alice"
BOB = "https://other.example/users/bob"


def head_of(document: Any) -> ActivityHead:
    return read_head(document, orjson.dumps(document))


def refusal(document: Any) -> tuple[int, str]:
    with pytest.raises(InboxRejected) as caught:
        head_of(document)
    return caught.value.status, caught.value.reason


def nested(depth: int) -> Any:
    """``depth`` levels of objects around a string (depth 0 is the string)."""
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


# -- read_head -----------------------------------------------------------------


def test_read_head_returns_id_type_and_actor() -> None:
    # Given a Mastodon-shaped Follow
    document = {
        "id": "https://m.example/1b2c",
        "type": "Follow",
        "actor": ALICE,
        "object": "https://coop.example/users/coop",
    }
    # When its head is read / Then it has the activity's own id, type and actor
    assert head_of(document) == ActivityHead(
        id="https://m.example/1b2c", type="Follow", actor=ALICE
    )


def test_read_head_accepts_an_embedded_actor_object() -> None:
    # Given an activity whose actor is embedded as an object
    document = {"id": ALICE + "/likes/1", "type": "Like", "actor": {"id": ALICE}, "object": "x"}
    # Then the actor is that object's id
    assert head_of(document).actor == ALICE


def test_transient_activity_gets_a_stable_id_from_its_bytes() -> None:
    # Given a transient activity (no id), as GoToSocial sends some of them
    document = {"type": "Like", "actor": ALICE, "object": "https://coop.example/objects/1"}
    body = orjson.dumps(document)
    # When its head is read twice from the same bytes
    first = read_head(document, body)
    second = read_head(document, body)
    # Then the id is the body's SHA-256, the same both times (a replay is recognised)
    assert first.id == "urn:sha256:" + hashlib.sha256(body).hexdigest()
    assert second.id == first.id
    # And other bytes give another id
    other = dict(document, object="https://coop.example/objects/2")
    assert read_head(other, orjson.dumps(other)).id != first.id


@pytest.mark.parametrize(
    ("document", "status", "reason"),
    [
        ([{"type": "Follow"}], 400, "not_an_object"),
        ("Follow", 400, "not_an_object"),
        (None, 400, "not_an_object"),
        ({"actor": ALICE}, 400, "bad_type"),
        ({"type": 5, "actor": ALICE}, 400, "bad_type"),
        ({"type": "", "actor": ALICE}, 400, "bad_type"),
        ({"type": ["Follow"], "actor": ALICE}, 400, "bad_type"),
        ({"type": "F" * 65, "actor": ALICE}, 400, "bad_type"),
        ({"type": "Follow"}, 400, "bad_actor"),
        ({"type": "Follow", "actor": "alice"}, 400, "bad_actor"),
        ({"type": "Follow", "actor": "ftp://m.example/users/alice"}, 400, "bad_actor"),
        ({"type": "Follow", "actor": "https://"}, 400, "bad_actor"),
        ({"type": "Follow", "actor": 42}, 400, "bad_actor"),
        ({"type": "Follow", "actor": [ALICE, BOB]}, 400, "bad_actor"),
        ({"type": "Follow", "actor": ALICE + "/" + "x" * MAX_ID_LENGTH}, 400, "bad_actor"),
        ({"type": "Follow", "actor": ALICE, "id": 7}, 400, "bad_id"),
        ({"type": "Follow", "actor": ALICE, "id": "urn:uuid:1"}, 400, "bad_id"),
        ({"type": "Follow", "actor": ALICE, "id": BOB + "/follows/1"}, 400, "foreign_id"),
        ({"type": "Create", "actor": ALICE, "id": ALICE + "/1", "object": None}, 400, "bad_object"),
    ],
)
def test_read_head_refuses_malformed_activities(document: Any, status: int, reason: str) -> None:
    assert refusal(document) == (status, reason)


def test_read_head_compares_origins_not_strings() -> None:
    # Given an id on the actor's origin with another path and an explicit default port
    document = {"type": "Create", "actor": ALICE, "id": "https://M.example:443/statuses/9/act"}
    # Then it is on the actor's origin
    assert head_of(document).id == "https://M.example:443/statuses/9/act"
    # But the same host with another scheme or port is another origin
    for other in ("http://m.example/statuses/9/act", "https://m.example:8443/statuses/9/act"):
        assert refusal({**document, "id": other}) == (400, "foreign_id")


# -- is_self_delete ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target", "expected"),
    [
        ("Delete", ALICE, True),
        ("Delete", {"id": ALICE}, True),
        ("Update", {"id": ALICE, "type": "Person"}, True),
        ("Update", ALICE, True),
        ("Delete", ALICE + "/statuses/1", False),
        ("Delete", {"id": ALICE + "/statuses/1", "type": "Tombstone"}, False),
        ("Delete", BOB, False),
        ("Follow", ALICE, False),
        ("Undo", ALICE, False),
        ("Delete", None, False),
    ],
)
def test_is_self_delete(kind: str, target: Any, expected: bool) -> None:
    # Given an activity of alice's whose object is ``target`` (None: no object)
    document: dict[str, Any] = {"id": ALICE + "#act", "type": kind, "actor": ALICE}
    if target is not None:
        document["object"] = target
    # Then only a Delete/Update of alice herself is a self-delete
    assert is_self_delete(document, head_of(document)) is expected


# -- nesting_depth -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("leaf", 0),
        (17, 0),
        ({}, 0),
        ([], 0),
        ({"a": 1}, 1),
        ([1, 2, 3], 1),
        ([[[]]], 2),
        ({"a": {"b": [1]}, "c": 2}, 3),
        (nested(MAX_DEPTH), MAX_DEPTH),
    ],
)
def test_nesting_depth_counts_levels(value: Any, expected: int) -> None:
    assert nesting_depth(value, MAX_DEPTH) == expected


def test_nesting_depth_is_the_deepest_branch() -> None:
    # Given a wide, shallow branch beside a narrow, deep one
    value = {"wide": list(range(1000)), "deep": nested(10)}
    # Then the depth is the deep branch's, plus the top level
    assert nesting_depth(value, MAX_DEPTH) == 11


def test_nesting_depth_stops_just_past_the_limit() -> None:
    # Given JSON nested far deeper than the limit
    value = nested(100_000)
    # When its depth is measured
    started = time.perf_counter()
    depth = nesting_depth(value, MAX_DEPTH)
    # Then the walk stops at limit + 1, without walking the whole thing
    assert depth == MAX_DEPTH + 1
    assert time.perf_counter() - started < 0.1


def test_a_realistic_mastodon_create_is_far_below_the_limit() -> None:
    # Given a Create with an embedded Note, tags, attachments and a content map
    create = {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            {"toot": "http://joinmastodon.org/ns#"},
        ],
        "type": "Create",
        "object": {
            "type": "Note",
            "tag": [{"type": "Mention", "href": BOB}],
            "attachment": [{"type": "Document", "focalPoint": [0.0, 1.0]}],
            "contentMap": {"en": "hi"},
            "replies": {"first": {"items": []}},
        },
    }
    # Then it nests five levels (create > object > attachment > document > focalPoint)
    assert nesting_depth(create, MAX_DEPTH) == 5


# -- contains_nul (U+0000 cannot be stored by PostgreSQL) ------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"type": "Create", "object": {"content": "fine"}}, False),
        ("\\u0000 as text", False),
        ({"content": "a\x00b"}, True),
        ({"a\x00": 1}, True),
        ([1, [2, ["\x00"]]], True),
        (nested(200) | {"x": "\x00"}, True),
    ],
)
def test_contains_nul(value: Any, expected: bool) -> None:
    assert contains_nul(value) is expected

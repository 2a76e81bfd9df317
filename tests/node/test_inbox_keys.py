"""The inbox against what peers do to keys and hosts: key fetch failures, replays,
key rotation, Deletes of unknown actors and domain blocks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest

from coopfed.app import make_runner, open_node
from federation.httpsig import format_http_date
from tests.support.fakepeer import FakePeer, PeerActor
from tests.support.inboxflow import (
    NOTHING,
    Sent,
    World,
    assert_refused,
    create_activity,
    post_raw,
    stored,
)
from tests.support.nodes import NodeFactory, RunningNode, eventually

# -- key fetch failures ----------------------------------------------------------


async def test_key_host_down_is_503(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Given a peer whose server has gone away after signing
    gone = await FakePeer(style="mastodon").start()
    alice = gone.add_actor("alice")
    url = f"{node.base_url}/inbox"
    body = orjson.dumps(gone.follow(alice, node.actor_url))
    headers = gone.signed_headers(alice, url, body)
    await gone.stop()
    # When its activity arrives, the key cannot be fetched (connection refused)
    answer = await post_raw(http, url, body, headers)
    # Then the node answers 503 (try again later), storing nothing
    assert_refused(answer, 503, "key_fetch_failed")
    assert await stored(node) == NOTHING


async def test_key_host_answering_5xx_is_503(node: RunningNode, peer: FakePeer) -> None:
    # Given a peer whose actor documents answer 503
    alice = peer.add_actor("alice")
    peer.get_status = 503
    # When alice's activity arrives / Then the node answers 503, storing nothing
    answer = await peer.send(alice, f"{node.base_url}/inbox", peer.follow(alice, node.actor_url))
    assert_refused(answer, 503, "key_fetch_failed")
    assert peer.gets == ["/users/alice"]
    assert await stored(node) == NOTHING


async def test_key_host_timing_out_is_503(nodes: NodeFactory, peer: FakePeer) -> None:
    # Given a node with a 0.5 s fetch timeout and a peer that takes 5 s to serve keys
    node = await nodes("a", delivery_timeout_seconds=0.5)
    alice = peer.add_actor("alice")
    peer.get_delay = 5.0
    # When alice's activity arrives
    started = datetime.now(UTC)
    answer = await peer.send(alice, f"{node.base_url}/inbox", peer.follow(alice, node.actor_url))
    # Then the node gives up after its timeout with 503, storing nothing
    assert_refused(answer, 503, "key_fetch_failed")
    assert datetime.now(UTC) - started < timedelta(seconds=3)
    assert await stored(node) == NOTHING


# -- replays -------------------------------------------------------------------


async def test_replayed_follow_is_processed_once(node: RunningNode, peer: FakePeer) -> None:
    # Given alice's signed Follow, accepted once
    alice = peer.add_actor("alice")
    follow = peer.follow(alice, node.actor_url)
    inbox = f"{node.base_url}/inbox"
    assert await peer.send(alice, inbox, follow) == (202, {"status": "accepted"})
    # When the same activity arrives again, freshly signed, and once more at the personal inbox
    assert await peer.send(alice, inbox, follow) == (202, {"status": "duplicate"})
    assert await peer.send(alice, f"{node.actor_url}/inbox", follow) == (
        202,
        {"status": "duplicate"},
    )
    # Then it is stored and processed once: one inbox row, one Accept
    await peer.wait_for("Accept")
    await node.drain()
    rows = await node.ctx.store.pool.fetch("SELECT outcome FROM inbox_activities")
    assert [r["outcome"] for r in rows] == ["accepted"]
    assert len(peer.of_type("Accept")) == 1
    assert peer.of_type("Accept")[0].body["object"]["id"] == follow["id"]


async def test_replayed_transient_activity_is_a_duplicate(
    node: RunningNode, peer: FakePeer
) -> None:
    # Given an activity without an id (transient), sent twice with the same bytes
    alice = peer.add_actor("alice")
    like = {"type": "Like", "actor": alice.id, "object": node.actor_url}
    inbox = f"{node.base_url}/inbox"
    # Then the second is recognised from its bytes
    assert await peer.send(alice, inbox, like) == (202, {"status": "accepted"})
    assert await peer.send(alice, inbox, like) == (202, {"status": "duplicate"})
    ids = await node.ctx.store.pool.fetch("SELECT activity_id FROM inbox_activities")
    assert len(ids) == 1 and ids[0]["activity_id"].startswith("urn:sha256:")


# -- key rotation --------------------------------------------------------------


async def test_rotated_key_is_refetched_once(nodes: NodeFactory, peer: FakePeer) -> None:
    # No wait between refetches here (the once-per-interval limit is the subject of
    # test_security_keyfetch.py).
    node = await nodes("a", key_refetch_seconds=0)
    inbox = f"{node.base_url}/inbox"
    alice = peer.add_actor("alice")
    # Given the node has cached alice's key
    assert await peer.send(alice, inbox, create_activity(peer, alice)) == (
        202,
        {"status": "accepted"},
    )
    assert peer.gets_of(alice.id) == 1
    # When alice's server rotates her key and she posts again
    peer.rotate_key(alice)
    answer = await peer.send(alice, inbox, create_activity(peer, alice))
    # Then the signature still verifies, after exactly one refetch
    assert answer == (202, {"status": "accepted"})
    assert peer.gets_of(alice.id) == 2
    # And the new key is cached: the next post needs no fetch
    assert (await peer.send(alice, inbox, create_activity(peer, alice)))[0] == 202
    assert peer.gets_of(alice.id) == 2
    # And a forged signature costs exactly one refetch per failure, never a loop
    for expected_gets in (3, 4):
        activity = create_activity(peer, alice)
        body = orjson.dumps(activity)
        headers = peer.signed_headers(alice, inbox, body)
        headers["Date"] = format_http_date(datetime.now(UTC) + timedelta(seconds=7))
        answer = await peer.send(alice, inbox, activity, headers=headers, body=body)
        assert_refused(answer, 401, "bad_signature")
        assert peer.gets_of(alice.id) == expected_gets
    assert await node.ctx.store.pool.fetchval("SELECT count(*) FROM inbox_activities") == 3


# -- Delete of unknown actors ----------------------------------------------------


async def test_delete_of_an_unknown_actor_is_ignored_without_fetching(
    node: RunningNode, peer: FakePeer
) -> None:
    # Given an actor the node never saw
    alice = peer.add_actor("alice")
    delete = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{alice.id}#delete",
        "type": "Delete",
        "actor": alice.id,
        "object": alice.id,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
    }
    # When her server announces her deletion
    answer = await peer.send(alice, f"{node.base_url}/inbox", delete)
    # Then the node acknowledges it, fetches nothing and stores nothing
    assert answer == (202, {"status": "ignored"})
    assert peer.gets == []
    assert await stored(node) == NOTHING
    assert await node.ctx.store.get_remote_actor(alice.id) is None


async def test_delete_of_a_known_actor_is_verified_and_processed(
    node: RunningNode, peer: FakePeer
) -> None:
    # Given an actor the node knows (she followed the coop)
    alice = peer.add_actor("alice")
    inbox = f"{node.base_url}/inbox"
    assert (await peer.send(alice, inbox, peer.follow(alice, node.actor_url)))[0] == 202
    delete = {"id": f"{alice.id}#delete", "type": "Delete", "actor": alice.id, "object": alice.id}
    # When she deletes herself
    answer = await peer.send(alice, inbox, delete)
    # Then the Delete is accepted (the cached key verifies it) and processed
    assert answer == (202, {"status": "accepted"})

    async def outcome() -> str | None:
        return await node.ctx.store.inbox_outcomes(delete["id"])

    assert await eventually(outcome, message="the Delete is processed") == "actor deleted"


# -- domain blocks ---------------------------------------------------------------


async def test_blocked_domain_is_403_and_unblocking_restores(
    node: RunningNode, localhost_peer: FakePeer
) -> None:
    peer = localhost_peer
    alice = peer.add_actor("alice")
    inbox = f"{node.base_url}/inbox"
    host = "localhost"
    # Given the peer's domain is blocked (database and the node's memory)
    assert await node.ctx.store.add_domain_block(host, "test")
    node.ctx.blocks.add(host)
    # When alice posts / Then she gets 403, no key is fetched and nothing stored
    answer = await peer.send(alice, inbox, create_activity(peer, alice))
    assert_refused(answer, 403, "blocked_domain")
    assert peer.gets == []
    assert await stored(node) == NOTHING
    # When the block is lifted / Then she is accepted again
    assert await node.ctx.store.remove_domain_block(host)
    node.ctx.blocks.remove(host)
    answer = await peer.send(alice, inbox, create_activity(peer, alice))
    assert answer == (202, {"status": "accepted"})


async def test_block_from_the_cli_reaches_the_running_node(
    node: RunningNode, localhost_peer: FakePeer, capsys: pytest.CaptureFixture[str]
) -> None:
    from coopfed.cli import admin as cli_admin

    peer = localhost_peer
    alice = peer.add_actor("alice")
    inbox = f"{node.base_url}/inbox"
    host = "localhost"
    # Given the admin blocks the peer with `coopfed block` (another process: its own
    # connection pool; the running node only learns of it through NOTIFY coopfed_config)
    async with open_node(node.settings, node.dsn, pool_size=2) as cli_node:
        args = argparse.Namespace(domain=peer.domain, reason=None)
        assert await cli_admin.block(cli_node, args) == 0
    assert capsys.readouterr().out == f"blocked {host}\n"

    async def blocked() -> bool:
        return node.ctx.blocks.is_blocked(host)

    await eventually(blocked, timeout=5, message="the node reloads its blocks")
    # When alice posts / Then the node answers 403 and stores nothing
    answer = await peer.send(alice, inbox, create_activity(peer, alice))
    assert_refused(answer, 403, "blocked_domain")
    assert await stored(node) == NOTHING
    # When the admin runs `coopfed unblock`
    async with open_node(node.settings, node.dsn, pool_size=2) as cli_node:
        assert await cli_admin.unblock(cli_node, argparse.Namespace(domain=host)) == 0

    async def unblocked() -> bool:
        return not node.ctx.blocks.is_blocked(host)

    await eventually(unblocked, timeout=5, message="the node reloads its blocks")
    # Then alice is accepted again
    answer = await peer.send(alice, inbox, create_activity(peer, alice))
    assert answer == (202, {"status": "accepted"})


# -- asynchronous processing -----------------------------------------------------


async def test_202_comes_before_processing(nodes: NodeFactory, peer: FakePeer) -> None:
    # Given a node running no workers
    node = await nodes("a", workers=0)
    alice = peer.add_actor("alice")
    follow = peer.follow(alice, node.actor_url)
    # When alice's Follow arrives
    answer = await peer.send(alice, f"{node.base_url}/inbox", follow)
    # Then it is accepted and stored, unprocessed, with its job queued, and no Accept sent
    assert answer == (202, {"status": "accepted"})
    pool = node.ctx.store.pool
    row = await pool.fetchrow("SELECT id, processed_at, outcome FROM inbox_activities")
    assert (row["processed_at"], row["outcome"]) == (None, None)
    jobs = await pool.fetch("SELECT kind, payload FROM jobs")
    assert [(j["kind"], j["payload"]) for j in jobs] == [("process_inbox", {"inbox_id": row["id"]})]
    assert peer.received == []
    # When a worker runs
    await make_runner(node.ctx, "late-worker").run_until_idle(timeout=10)
    # Then the outcome is recorded and alice gets her Accept
    row = await pool.fetchrow("SELECT processed_at, outcome FROM inbox_activities")
    assert row["processed_at"] is not None
    assert row["outcome"] == "accepted"
    accepts = await peer.wait_for("Accept")
    assert accepts[0].verified, accepts[0].reason


async def test_workers_record_the_outcome(node: RunningNode, peer: FakePeer) -> None:
    # Given a node with its workers running
    alice = peer.add_actor("alice")
    create = create_activity(peer, alice, "Hello coops")
    # When alice's Create arrives (the coop does not follow her)
    assert await peer.send(alice, f"{node.base_url}/inbox", create) == (
        202,
        {"status": "accepted"},
    )

    # Then a worker processes it and records what became of it
    async def outcome() -> str | None:
        return await node.ctx.store.inbox_outcomes(create["id"])

    assert await eventually(outcome, message="the Create is processed")
    processed = await node.ctx.store.pool.fetchval(
        "SELECT processed_at IS NOT NULL FROM inbox_activities"
    )
    assert processed is True


# -- garbage never gives a 5xx -------------------------------------------------------


def _garbage_cases(w: World) -> list[tuple[str, Sent]]:
    a = w.activity
    sig = w.signed().headers["Signature"]
    cases: list[tuple[str, Sent]] = []

    def body(name: str, raw: bytes) -> None:
        cases.append((name, w.signed(raw=raw)))

    def document(name: str, **changes: Any) -> None:
        cases.append((name, w.signed(dict(a, **changes))))

    def header(name: str, drop: tuple[str, ...] = (), **changes: str) -> None:
        sent = w.signed()
        for key in drop:
            del sent.headers[key]
        for key, value in changes.items():
            sent.headers[key.replace("_", "-")] = value
        cases.append((name, sent))

    body("empty", b"")
    body("null", b"null")
    body("number", b"17")
    body("string", b'"Create"')
    body("truncated", b'{"type":')
    body("invalid_utf8", b'{"type": "\xff\xfe"}')
    body("lone_surrogate", b'{"type": "\\ud800"}')
    body("huge_number", b'{"type": "Create", "n": 1e400}')
    body("depth_2000", b"[" * 2000 + b"]" * 2000)
    body("nul_in_body", orjson.dumps(dict(a, summary="a\x00b")))
    document("type_number", type=5)
    document("actor_ipv6_broken", actor="http://[::1")
    document("actor_javascript", actor="javascript:alert(1)")
    document("actor_no_host", actor="https://")
    document("id_ipv6_broken", id="http://[oops/1")
    document("id_number", id=12)
    document("object_null", object=None)
    document("type_huge", type="T" * 5000)
    header("sig_empty", Signature="")
    header("sig_keyid_only", Signature=f'keyId="{w.alice.key_id}"')
    header("sig_bad_base64", Signature=sig.rsplit("signature=", 1)[0] + 'signature="!!!"')
    header("sig_unknown_algorithm", Signature=sig.replace("rsa-sha256", "ed25519"))
    covered = "host date digest content-type (request-target)"
    assert covered in sig
    header("sig_only_date_covered", Signature=sig.replace(covered, "date"))
    header("sig_absent_header_covered", Signature=sig.replace(covered, covered + " x-absent"))
    header("sig_keyid_ipv6_broken", Signature=sig.replace(w.alice.key_id, "http://[::1"))
    header("sig_keyid_not_url", Signature=sig.replace(w.alice.key_id, "main-key"))
    header("sig_keyid_ftp", Signature=sig.replace(w.alice.key_id, "ftp://127.0.0.1/key"))
    header("sig_duplicate_param", Signature=sig + ',keyId="x"')
    header("sig_created_not_given", Signature=sig.replace(covered, covered + " (created)"))
    header("sig_input_garbage", Signature_Input="((((", Signature="sig1=:AAAA:")
    components = '("@method" "@target-uri")'
    header(
        "sig_input_with_cavage_signature", Signature_Input=f'sig2={components};created=1;keyid="k"'
    )
    header(
        "sig_input_created_text",
        Signature_Input=f'sig1={components};created="x";keyid="{w.alice.key_id}"',
        Signature="sig1=:AAAA:",
    )
    header("date_garbage", Date="yesterday")
    header("date_year_99999", Date="Mon, 01 Jan 99999 00:00:00 GMT")
    header("digest_garbage", Digest="SHA-256=!!!")
    header("digest_md5_only", Digest="MD5=abc")
    header("authorization_garbage", drop=("Signature",), Authorization="Signature ,,,")
    header("authorization_other_scheme", drop=("Signature",), Authorization="Bearer abc")
    return cases


@pytest.mark.parametrize("path", ["/inbox", "/users/coop/inbox", "/actor/inbox"])
async def test_garbage_never_gives_a_server_error(
    node: RunningNode, peer: FakePeer, http: aiohttp.ClientSession, path: str
) -> None:
    # Given ~40 malformed bodies and signature headers, for each of the node's inboxes
    assert node.settings.username == "coop"
    alice = peer.add_actor("alice")
    bob = peer.add_actor("bob")
    world = World(peer, alice, bob, node, node.base_url + path)
    world.activity = create_activity(peer, alice, "Hello")
    failures = []
    for name, sent in _garbage_cases(world):
        # When each is POSTed
        status, answer = await post_raw(http, world.url, sent.body, sent.headers)
        # Then each is a 4xx with a JSON error and a reason
        if not 400 <= status < 500 or not answer.get("error") or not answer.get("reason"):
            failures.append((name, status, answer))
    assert failures == [], "\n".join(map(repr, failures))
    assert await stored(node) == NOTHING


@dataclass
class OddActor(PeerActor):
    """An actor whose served document has some fields replaced."""

    overrides: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {**super().document(), **self.overrides}


ODD_DOCUMENTS: list[tuple[str, dict[str, Any], str]] = [
    ("nul_in_name", {"name": "Al\x00ice"}, "key_fetch_failed"),
    ("inbox_broken_ipv6", {"inbox": "http://[::1"}, "invalid_key_owner"),
    ("no_inbox", {"inbox": None}, "invalid_key_owner"),
    ("public_key_not_an_object", {"publicKey": "pem"}, "invalid_key_owner"),
    ("id_elsewhere", {"id": "https://elsewhere.example/users/alice"}, "invalid_key_owner"),
]


@pytest.mark.parametrize(
    ("overrides", "reason"), [c[1:] for c in ODD_DOCUMENTS], ids=[c[0] for c in ODD_DOCUMENTS]
)
async def test_unusable_actor_document_is_401_not_a_server_error(
    node: RunningNode, peer: FakePeer, overrides: dict[str, Any], reason: str
) -> None:
    # Given a peer serving an actor document the node cannot use
    alice = OddActor("alice", peer.base, peer.style, overrides=overrides)
    peer.actors["alice"] = alice
    # When alice's activity arrives
    answer = await peer.send(alice, f"{node.base_url}/inbox", peer.follow(alice, node.actor_url))
    # Then the key is refused: a 401, not a 500, and nothing is stored
    assert_refused(answer, 401, reason)
    assert await stored(node) == NOTHING


async def test_broken_shared_inbox_is_dropped_not_fatal(node: RunningNode, peer: FakePeer) -> None:
    # Given an actor whose sharedInbox is not a parseable URL
    alice = OddActor(
        "alice", peer.base, peer.style, overrides={"endpoints": {"sharedInbox": "http://[::1"}}
    )
    peer.actors["alice"] = alice
    # When her activity arrives / Then it is accepted and the shared inbox ignored
    answer = await peer.send(alice, f"{node.base_url}/inbox", peer.follow(alice, node.actor_url))
    assert answer == (202, {"status": "accepted"})
    cached = await node.ctx.store.get_remote_actor(alice.id)
    assert cached is not None
    assert (cached.inbox, cached.shared_inbox) == (f"{alice.id}/inbox", None)

"""The inbox is no request reflector: key fetches are limited, failures remembered."""

from __future__ import annotations

import uuid

import orjson

from federation.keys import generate_private_key
from tests.support.fakepeer import FakePeer, PeerActor
from tests.support.nodes import NodeFactory


def _like(actor: str, obj: str) -> dict[str, str]:
    return {"type": "Like", "actor": actor, "object": obj, "id": f"{actor}/likes/{uuid.uuid4()}"}


async def _post(
    peer: FakePeer, signer: PeerActor, url: str, activity: dict[str, str]
) -> tuple[int, str]:
    """POST ``activity`` signed by ``signer`` (whatever actor the activity claims)."""
    body = orjson.dumps(activity)
    headers = peer.signed_headers(signer, url, body)
    status, answer = await peer.send(signer, url, activity, headers=headers, body=body)
    return status, str(answer.get("reason", answer.get("status")))


async def test_rotating_claimed_hosts_cause_a_bounded_number_of_key_fetches(
    nodes: NodeFactory,
) -> None:
    # Given a node (5 key fetches of burst) and a third party hosting nothing we want
    node = await nodes("k", key_fetch_rate=0.01, key_fetch_burst=5)
    victim = await FakePeer(style="mastodon").start()
    try:
        inbox = f"{node.base_url}/inbox"
        answers = []
        # When 20 POSTs claim 20 different actor hosts, each with another keyId there
        for i in range(20):
            ghost = PeerActor(f"ghost{i}", victim.base, victim.style)
            actor = f"http://h{i}.example/users/x"
            answers.append(await _post(victim, ghost, inbox, _like(actor, node.actor_url)))
        # Then the third party received at most the burst of fetches
        assert len(victim.gets) == 5, victim.gets
        assert answers[:5] == [(401, "key_gone")] * 5
        assert set(answers[5:]) == {(429, "key_fetch_limited")}
    finally:
        await victim.stop()


async def test_a_key_that_failed_is_not_fetched_again_for_a_while(nodes: NodeFactory) -> None:
    node = await nodes("k", key_refetch_seconds=3600)
    peer = await FakePeer(style="mastodon").start()
    try:
        # Given a keyId whose document is 404
        ghost = PeerActor("ghost", peer.base, peer.style)
        inbox = f"{node.base_url}/inbox"
        # When five activities signed with it arrive
        answers = [
            await _post(peer, ghost, inbox, _like(ghost.id, node.actor_url)) for _ in range(5)
        ]
        # Then each is refused, but the key was fetched once
        assert answers == [(401, "key_gone")] * 5
        assert peer.gets_of(ghost.id) == 1
    finally:
        await peer.stop()


async def test_a_bad_signature_refetches_a_cached_key_at_most_once_per_interval(
    nodes: NodeFactory,
) -> None:
    node = await nodes("k", key_refetch_seconds=3600)
    peer = await FakePeer(style="mastodon").start()
    try:
        # Given alice, whose key the node has cached
        alice = peer.add_actor("alice")
        inbox = f"{node.base_url}/inbox"
        assert await _post(peer, alice, inbox, _like(alice.id, node.actor_url)) == (
            202,
            "accepted",
        )
        fetched = peer.gets_of(alice.id)
        # When ten activities claim to be alice with a wrong key
        forger = PeerActor("alice", peer.base, peer.style, generate_private_key())
        answers = [
            await _post(peer, forger, inbox, _like(alice.id, node.actor_url)) for _ in range(10)
        ]
        # Then all are refused and her key was not fetched again within the interval
        assert answers == [(401, "bad_signature")] * 10
        assert peer.gets_of(alice.id) == fetched
    finally:
        await peer.stop()


async def test_a_rotated_key_is_followed_once_the_interval_passed(nodes: NodeFactory) -> None:
    node = await nodes("k", key_refetch_seconds=0)
    peer = await FakePeer(style="mastodon").start()
    try:
        # Given alice's cached key, then rotated
        alice = peer.add_actor("alice")
        inbox = f"{node.base_url}/inbox"
        assert (await _post(peer, alice, inbox, _like(alice.id, node.actor_url)))[0] == 202
        peer.rotate_key(alice)
        # When she signs with the new key / Then it is fetched again and accepted
        assert (await _post(peer, alice, inbox, _like(alice.id, node.actor_url)))[0] == 202
    finally:
        await peer.stop()


async def test_the_inbox_limit_before_verification_is_the_peers(nodes: NodeFactory) -> None:
    # Given a node allowing a burst of 3 inbox requests
    node = await nodes("k", inbox_rate=0.01, inbox_burst=3)
    peer = await FakePeer(style="mastodon").start()
    try:
        ghost = PeerActor("ghost", peer.base, peer.style)
        inbox = f"{node.base_url}/inbox"
        # When one peer sends unverifiable POSTs claiming ever new actor hosts
        answers = [
            await _post(peer, ghost, inbox, _like(f"http://h{i}.example/u/x", node.actor_url))
            for i in range(5)
        ]
        # Then the claimed hosts do not multiply its budget
        assert [status for status, _ in answers] == [401, 401, 401, 429, 429]
    finally:
        await peer.stop()

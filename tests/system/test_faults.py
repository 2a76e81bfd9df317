"""Faults: the database going away under traffic, and peers that are slow or talk garbage.

Covered elsewhere (not repeated here):
- a receiving node down for minutes, then back, gets everything once:
  test_restart.py::test_receiver_down_for_a_while_gets_everything and
  test_deliver.py::test_receiver_failing_then_recovering_gets_it_once;
- the node killed with kill -9 in the middle of a 1,000-recipient fan-out and started
  again delivers every delivery exactly once:
  test_restart.py::test_node_killed_mid_fan_out_delivers_the_rest_exactly_once;
- duplicate deliveries of one activity are processed once:
  test_inbox.py::test_replayed_follow_is_processed_once and the ``replayed_*`` cases
  of tests/corpus/inbox_auth.json (test_corpus.py);
- /health with the pool cut under it: test_health.py.

Here: PostgreSQL stopped and started again under traffic (a separate embedded
cluster, so the shared test cluster is never touched), a receiver slower than the
delivery timeout, and peers answering fetches with garbage.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from coopfed.embedded_pg import EmbeddedPostgres
from outbox.c2s import issue_token
from outbox.publish import post_note
from tests.support.fakepeer import FakePeer
from tests.support.followers import add_followers, from_document
from tests.support.nodes import NodeFactory, RunningNode, bound_socket, eventually, node_settings

# -- PostgreSQL stopped and started again ---------------------------------------------


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    parent = tempfile.mkdtemp(prefix="coopfed-faults-pg-")
    os.chmod(parent, 0o711)  # the server user must traverse it when we are root
    server = EmbeddedPostgres(Path(parent) / "data", fast=True)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
async def node_on_own_postgres(own_postgres: EmbeddedPostgres) -> AsyncIterator[RunningNode]:
    sock = bound_socket()
    data_dir = Path(tempfile.mkdtemp(prefix="coopfed-faults-node-"))
    settings = node_settings(sock.getsockname()[1], data_dir, own_postgres.dsn)
    node = RunningNode("pg", settings, own_postgres.dsn, sock)
    await node.start()
    try:
        yield node
    finally:
        async with asyncio.timeout(20):
            await node.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def timed_get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any, float]:
    started = time.monotonic()
    async with http.get(url, headers={"Accept": "application/activity+json"}) as resp:
        body = await resp.json(content_type=None)
        return resp.status, body, time.monotonic() - started


async def test_database_stopped_under_traffic_gives_503_then_recovers(
    own_postgres: EmbeddedPostgres,
    node_on_own_postgres: RunningNode,
    http: aiohttp.ClientSession,
) -> None:
    node = node_on_own_postgres
    peer = await FakePeer().start()
    try:
        # Given a node with a follower on a peer, alice sending, and a C2S client
        coop = await node.ctx.coop_actor()
        follower = peer.add_actor("follower")
        await add_followers(node.ctx.store, coop.id, [from_document(follower.document())])
        alice = peer.add_actor("alice")
        _, token = await issue_token(node.ctx, coop, "fault")
        inbox = f"{node.base_url}/inbox"
        for i in range(5):
            status, _ = await peer.send(alice, inbox, peer.create(alice, peer.note(alice, f"{i}")))
            assert status == 202
        await node.drain()
        # And a post whose delivery failed once (the follower's server is down) and waits
        peer.down = True
        queued = await post_note(node.ctx, coop, "Queued before the outage")

        async def retry_waiting() -> bool:
            error = await node.ctx.store.pool.fetchval(
                "SELECT last_error FROM jobs WHERE kind = 'deliver'"
            )
            return error is not None

        await eventually(retry_waiting, message="the delivery to fail once")

        # And alice sending all the while (every 50 ms) through the outage
        answers: list[tuple[int, str, str]] = []
        done = asyncio.Event()

        async def keep_sending() -> None:
            while not done.is_set():
                note = peer.note(alice, "steady", to=[node.actor_url])
                create = peer.create(alice, note)
                async with asyncio.timeout(10):
                    status, answer = await peer.send(alice, inbox, create)
                answers.append((status, answer.get("reason") or answer["status"], create["id"]))
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(keep_sending())
        await asyncio.sleep(0.3)

        # When PostgreSQL stops while traffic goes on
        own_postgres.stop()
        # Then /health says 503 quickly (bounded by its 3 s ping), in JSON
        status, body, took = await timed_get(http, f"{node.base_url}/health")
        assert (status, body) == (503, {"status": "unavailable", "database": "down"})
        assert took < 5
        # And the inbox answers 503 JSON (the sender retries later), not a 500 nor a hang
        started = time.monotonic()
        status, answer = await peer.send(alice, inbox, peer.create(alice, peer.note(alice, "x")))
        assert (status, answer.get("reason")) == (503, "database_unavailable")
        assert time.monotonic() - started < 5
        # And so do the actor document and the C2S API
        status, body, took = await timed_get(http, node.actor_url)
        assert (status, body["reason"], took < 5) == (503, "database_unavailable", True)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with http.post(
            f"{node.base_url}/users/coop/outbox",
            data=orjson.dumps({"type": "Note", "content": "during the outage"}),
            headers=headers,
        ) as resp:
            assert resp.status == 503
            assert (await resp.json())["reason"] == "database_unavailable"
        # And the worker tasks are still alive
        workers = [t for t in asyncio.all_tasks() if t.get_name() == "worker-0"]
        assert len(workers) == 1 and not workers[0].done()

        # And the steady sender meets the outage too (stop() blocked the loop meanwhile)
        async def sender_refused() -> bool:
            return any(status == 503 for status, _, _ in answers)

        await eventually(sender_refused, timeout=5, message="the sender to get a 503")

        # When PostgreSQL is started again (same cluster), the node not restarted
        own_postgres.start()

        # Then /health is 200 again
        async def healthy() -> bool:
            status, _, _ = await timed_get(http, f"{node.base_url}/health")
            return status == 200

        await eventually(healthy, timeout=15, message="/health to recover")
        await asyncio.sleep(0.3)
        done.set()
        await sender
        # And every request of the steady sender got 202 or 503, never a 500 or a hang
        kinds = {(status, reason) for status, reason, _ in answers}
        assert kinds == {(202, "accepted"), (503, "database_unavailable")}, kinds
        # And the inbox accepts, and the workers process what it queued
        create = peer.create(alice, peer.note(alice, "after"))
        assert await peer.send(alice, inbox, create) == (202, {"status": "accepted"})

        async def processed() -> str | None:
            return await node.ctx.store.inbox_outcomes(create["id"])

        assert await eventually(processed, timeout=15, message="the Create to be processed")
        # And every activity that got a 202 was processed and its note kept: nothing
        # accepted was lost.  (Processing is at least once: a Create whose outcome could
        # not be recorded when the database went away runs again and finds its note
        # already there: "ignored: stale".)
        await node.drain()
        accepted = [i for status, _, i in answers if status == 202]
        outcomes = {await node.ctx.store.inbox_outcomes(i) for i in accepted}
        assert outcomes <= {"stored", "ignored: stale"}, outcomes
        notes = await node.ctx.store.pool.fetchval(
            "SELECT count(*) FROM objects WHERE uri = ANY($1::text[])",
            [i.removesuffix("/activity") for i in accepted],
        )
        assert notes == len(accepted)
        # And the coop's posts reach its follower again, the one queued before the outage
        # included, each once
        peer.down = False
        note = await post_note(node.ctx, coop, "We are back")
        await peer.wait_for("Create", count=2, timeout=15)
        await node.drain()
        received = sorted(r.body["id"] for r in peer.of_type("Create"))
        assert received == sorted([queued["id"], note["id"]])
        # And the workers were never restarted
        assert [t for t in asyncio.all_tasks() if t.get_name() == "worker-0"] == workers
    finally:
        await peer.stop()


# -- a receiver slower than the delivery timeout ------------------------------------------


async def test_slow_receiver_does_not_hold_up_other_deliveries(nodes: NodeFactory) -> None:
    # Given a node whose deliveries time out after 1 s, a slow and a quick receiver
    node = await nodes("a", delivery_timeout_seconds=1.0)
    slow = await FakePeer(hostname="localhost").start()
    quick = await FakePeer().start()
    try:
        slow.inbox_delay = 2.0
        coop = await node.ctx.coop_actor()
        followers = [slow.add_actor("s"), quick.add_actor("q")]
        await add_followers(
            node.ctx.store, coop.id, [from_document(a.document()) for a in followers]
        )
        # When the coop posts twice
        started = time.monotonic()
        first = await post_note(node.ctx, coop, "one")
        second = await post_note(node.ctx, coop, "two")
        # Then the quick receiver gets both at once, while the slow one still hangs
        got = await quick.wait_for("Create", count=2, timeout=5)
        assert sorted(r.body["id"] for r in got) == sorted([first["id"], second["id"]])
        assert time.monotonic() - started < 3

        # And the slow deliveries end in a timeout and wait for a retry; nothing is lost
        async def timed_out() -> list[str]:
            rows = await node.ctx.store.pool.fetch(
                "SELECT last_error FROM jobs WHERE kind = 'deliver' AND last_error IS NOT NULL"
            )
            return [r["last_error"] for r in rows]

        errors = await eventually(timed_out, timeout=10, message="slow deliveries to time out")
        assert all(e.startswith("timeout for http://localhost:") for e in errors), errors
        # And the worker is alive and takes new work
        workers = [t for t in asyncio.all_tasks() if t.get_name() == "worker-0"]
        assert len(workers) == 1 and not workers[0].done()
        third = await post_note(node.ctx, coop, "three")
        got = await quick.wait_for("Create", count=3, timeout=5)
        assert got[-1].body["id"] == third["id"]
    finally:
        for peer in (slow, quick):
            await peer.stop()


# -- peers answering fetches with garbage ------------------------------------------------

GARBAGE: list[tuple[str, str, bytes, float, str]] = [
    ("html", "text/html", b"<html><body>Welcome to nginx!</body></html>", 0.0, "bad_content_type"),
    ("invalid_json", "application/activity+json", b'{"id": "x", "type": ', 0.0, "bad_json"),
    ("json_array", "application/activity+json", b"[1, 2, 3]", 0.0, "bad_json"),
    ("json_null", "application/activity+json", b"null", 0.0, "bad_json"),
    ("binary", "application/activity+json", bytes(range(256)) * 8, 0.0, "bad_json"),
    (
        "two_megabytes",
        "application/activity+json",
        b'{"a": "' + b"x" * 2_000_000 + b'"}',
        0.0,
        "too_large",
    ),
    ("nul_escape", "application/activity+json", b'{"id": "a\\u0000b"}', 0.0, "bad_json"),
    ("slower_than_timeout", "application/activity+json", b"{}", 3.0, "timeout"),
]


async def test_garbage_from_peers_is_recorded_and_work_goes_on(nodes: NodeFactory) -> None:
    # Given a node (1 s timeout) and alice, whose server serves her objects as garbage
    node = await nodes("a", delivery_timeout_seconds=1.0)
    peer = await FakePeer().start()
    try:
        alice = peer.add_actor("alice")
        inbox = f"{node.base_url}/inbox"
        sent: dict[str, str] = {}
        for name, content_type, raw, delay, _ in GARBAGE:
            url = f"{peer.base}/objects/{name}"
            peer.raw_objects[url] = (content_type, raw, delay)
            # When she sends a Create naming each object by its URL (the node must fetch it)
            activity = {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": peer.new_id(alice),
                "type": "Create",
                "actor": alice.id,
                "object": url,
            }
            assert (await peer.send(alice, inbox, activity))[0] == 202
            sent[name] = activity["id"]
        # And then a normal Create of an embedded note
        normal = peer.create(alice, peer.note(alice, "hello", to=[node.actor_url]))
        assert (await peer.send(alice, inbox, normal))[0] == 202
        await node.drain(timeout=20)
        # Then each garbage answer is recorded as a refusal naming what was wrong
        outcomes = {name: await node.ctx.store.inbox_outcomes(i) for name, i in sent.items()}
        expected = {
            name: f"refused: the object could not be fetched: {reason}"
            for name, _, _, _, reason in GARBAGE
        }
        assert {n: (o or "")[: len(expected[n])] for n, o in outcomes.items()} == expected
        # And the normal one was stored, by the same, still running, worker
        assert await node.ctx.store.inbox_outcomes(normal["id"]) == "stored"
        workers = [t for t in asyncio.all_tasks() if t.get_name() == "worker-0"]
        assert len(workers) == 1 and not workers[0].done()
    finally:
        await peer.stop()

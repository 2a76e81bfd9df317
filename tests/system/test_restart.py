"""Nothing is lost when a node dies mid-fan-out or a receiver is down for a while."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path
from typing import IO

import aiohttp

from coopfed.app import open_node
from federation.settings import Settings
from outbox.publish import follow, post_note
from tests.support.cli import COOPFED
from tests.support.fakepeer import FakePeer
from tests.support.followers import add_followers, remote_follower
from tests.support.nodes import NodeFactory, bound_socket, clean_database, database_dsn, eventually

FOLLOWERS_PER_PEER = 500


class NodeProcess:
    """``coopfed run`` as a subprocess, to be killed and started again."""

    def __init__(self, settings: Settings, log: IO[bytes]) -> None:
        self.settings = settings
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        env = {
            **os.environ,
            "COOPFED_JOB_LEASE_SECONDS": "2",
            "COOPFED_RETRY_SCALE": "0.01",
        }
        self.proc = await asyncio.create_subprocess_exec(
            str(COOPFED),
            "run",
            "--database-url",
            self.settings.database_url,
            "--host",
            self.settings.host,
            "--port",
            str(self.settings.port),
            "--data-dir",
            str(self.settings.data_dir),
            "--allow-private-addresses",
            stdout=self.log,
            stderr=self.log,
            env=env,
        )

        async def healthy() -> bool:
            try:
                async with http.get(f"{self.settings.base_url}/health") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(healthy, timeout=20, interval=0.1, message="the node to start")

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                await self.kill()


async def test_node_killed_mid_fan_out_delivers_the_rest_exactly_once(
    pg_admin_dsn: str, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # Given a node running as its own process
    dsn = await database_dsn(pg_admin_dsn, "restart_node")
    await clean_database(dsn)
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    settings = Settings(
        host="127.0.0.1",
        port=port,
        data_dir=tmp_path / "node",
        database_url=dsn,
        allow_private_addresses=True,
    )
    peers = [await FakePeer(cache_keys=True).start() for _ in range(2)]
    log = (tmp_path / "node.log").open("wb")
    node = NodeProcess(settings, log)
    try:
        for peer in peers:
            peer.inbox_delay = 0.005  # a slow-ish receiver
        await node.start(http)
        async with open_node(settings, dsn, pool_size=4, migrate=False) as ctx:
            # And 1,000 followers on two servers, each with its own inbox (no shared one)
            coop = await ctx.coop_actor()
            followers = [
                remote_follower(peer.base, f"f{i}", shared_inbox=False)
                for peer in peers
                for i in range(FOLLOWERS_PER_PEER)
            ]
            await add_followers(ctx.store, coop.id, followers)
            # When the coop posts (1,000 deliveries queued)
            create = await post_note(ctx, coop, "Offer: 1,000 loaves")

            def received() -> int:
                return sum(len(peer.received) for peer in peers)

            # And the node is killed when about a third has arrived
            async with asyncio.timeout(20):
                while received() < 333:
                    await asyncio.sleep(0.005)
            await node.kill()
            at_kill = received()
            in_flight = await ctx.store.pool.fetchval(
                "SELECT count(*) FROM jobs WHERE locked_until > now()"
            )
            left = await ctx.store.pool.fetchval("SELECT count(*) FROM jobs")
            # And started again
            await node.start(http)

            async def all_done() -> bool:
                return received() >= 1000 and await ctx.store.queue_depth() == {}

            await eventually(all_done, timeout=20, message="the rest of the fan-out")
            failed = await ctx.store.count_failed_jobs()
        await node.stop()
        # Then every inbox received the post, verified
        got = Counter((peer.port, r.path) for peer in peers for r in peer.received)
        expected = {
            (peer.port, f"/users/f{i}/inbox") for peer in peers for i in range(FOLLOWERS_PER_PEER)
        }
        assert set(got) == expected
        assert {r.body["id"] for peer in peers for r in peer.received} == {create["id"]}
        assert all(r.verified for peer in peers for r in peer.received)
        assert failed == {}
        # And duplicates are at most the deliveries in flight when the node died
        duplicates = sum(got.values()) - len(expected)
        print(
            f"\nkilled after {at_kill} deliveries; {left} jobs left, {in_flight} in flight;"
            f" duplicates after restart: {duplicates}"
        )
        assert 333 <= at_kill < 1000
        # (the jobs of every inbox not yet reached were still queued: nothing was lost)
        assert left >= 1000 - at_kill
        assert 0 <= duplicates <= in_flight
    finally:
        await node.stop()
        log.close()
        for peer in peers:
            await peer.stop()


async def test_receiver_down_for_a_while_gets_everything(nodes: NodeFactory) -> None:
    # Given coop B follows coop A
    a = await nodes("a")
    b = await nodes("b")
    await follow(b.ctx, await b.ctx.coop_actor(), a.handle)

    async def accepted() -> bool:
        coop_b = await b.ctx.coop_actor()
        return await b.ctx.store.count_follows(coop_b.id, "outbound") == 1

    await eventually(accepted, message="A accepts B's follow")
    await b.drain()
    # When B is down while A posts five times
    await b.stop()
    coop_a = await a.ctx.coop_actor()
    posts = [await post_note(a.ctx, coop_a, f"Offer {n}") for n in range(5)]

    async def all_failed_once() -> bool:
        rows = await a.ctx.store.pool.fetch(
            "SELECT last_error FROM jobs WHERE kind = 'deliver' AND attempts >= 1"
        )
        return len(rows) == 5 and all(r[0] and r[0].startswith("connection") for r in rows)

    await eventually(all_failed_once, message="every delivery to fail while B is down")
    # And B comes back on the same port
    await b.start()

    async def stored() -> bool:
        return len(await b.ctx.store.list_objects_by(a.actor_url)) >= 5

    await eventually(stored, message="B to store A's posts")
    await a.drain()
    await b.drain()
    # Then B got all five posts, each exactly once
    objects = await b.ctx.store.list_objects_by(a.actor_url)
    assert sorted(o.uri for o in objects) == sorted(p["object"]["id"] for p in posts)
    assert b.ctx.metrics.inbox_accepted == 5
    creates = await b.ctx.store.pool.fetchval(
        "SELECT count(*) FROM inbox_activities WHERE type = 'Create' AND actor = $1", a.actor_url
    )
    assert creates == 5
    assert await a.ctx.store.queue_depth() == {}
    assert await a.ctx.store.count_failed_jobs() == {}

"""``coopfed run --web-processes N --worker-processes M``: one node in several processes.

The parent starts the embedded PostgreSQL once; web processes share the port; worker
processes do the jobs; a child that dies is started again and loses nothing; SIGTERM
and Ctrl-C (SIGINT to the process group) stop every child and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from coopfed.app import open_node
from coopfed.database import embedded_dir
from coopfed.embedded_pg import running_dsn
from coopfed.processes import BUSY_REQUESTS
from federation.settings import Settings
from outbox.publish import post_note
from tests.support.cli import COOPFED, cli_env, free_port, pid_gone, wait_healthy
from tests.support.fakepeer import FakePeer
from tests.support.followers import add_followers, remote_follower
from tests.support.nodes import eventually

FOLLOWERS = 600


@pytest.fixture
def data_root() -> Iterator[Path]:
    """A directory the PostgreSQL user can traverse (pytest's tmp_path is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="coopfed-processes-"))
    os.chmod(root, 0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def node_children(pid: int) -> dict[str, list[int]]:
    """The parent's children by kind: PostgreSQL, and the spawned coopfed processes."""
    kinds: dict[str, list[int]] = {"postgres": [], "coopfed": []}
    for child in children(pid):
        line = command_line(child)
        if "bin/postgres" in line:
            kinds["postgres"].append(child)
        elif "spawn_main" in line:
            kinds["coopfed"].append(child)
    return kinds


async def start(settings: Settings, log: Path, *extra: str) -> asyncio.subprocess.Process:
    env = {**cli_env(), "COOPFED_JOB_LEASE_SECONDS": "2", "COOPFED_RETRY_SCALE": "0.01"}
    return await asyncio.create_subprocess_exec(
        str(COOPFED),
        "run",
        "--data-dir",
        str(settings.data_dir),
        "--port",
        str(settings.port),
        "--allow-private-addresses",
        *extra,
        stdout=log.open("ab"),
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


async def test_web_and_worker_processes_fan_out_once_survive_a_kill_and_stop_together(
    http: aiohttp.ClientSession, tmp_path: Path, data_root: Path
) -> None:
    # Given a node started as 2 web processes and 1 worker process, embedded PostgreSQL
    settings = Settings(port=free_port(), data_dir=data_root / "node", allow_private_addresses=True)
    log = tmp_path / "node.log"
    proc = await start(settings, log, "--web-processes", "2", "--worker-processes", "1")
    peer = await FakePeer(cache_keys=True).start()
    try:
        await wait_healthy(http, proc, settings.base_url, log.read_text)

        async def all_started() -> dict[str, list[int]]:
            kinds = node_children(proc.pid)
            return kinds if len(kinds["coopfed"]) == 3 else {}

        # Then the parent started one PostgreSQL and three coopfed processes
        kinds = await eventually(all_started, message="three child processes")
        assert len(kinds["postgres"]) == 1
        dsn = running_dsn(embedded_dir(settings))
        assert dsn is not None
        # When the coop posts to 600 followers on one server, each with its own inbox
        peer.inbox_delay = 0.005
        async with open_node(settings, dsn, pool_size=2, migrate=False) as ctx:
            coop = await ctx.coop_actor()
            followers = [
                remote_follower(peer.base, f"f{i}", shared_inbox=False) for i in range(FOLLOWERS)
            ]
            await add_followers(ctx.store, coop.id, followers)
            create = await post_note(ctx, coop, "Offer: 600 loaves")
            # And every child is killed (kill -9) once a quarter has arrived
            async with asyncio.timeout(30):
                while len(peer.received) < FOLLOWERS // 4:
                    await asyncio.sleep(0.005)
            for child in kinds["coopfed"]:
                os.kill(child, signal.SIGKILL)
            at_kill = len(peer.received)
            in_flight = await ctx.store.pool.fetchval(
                "SELECT count(*) FROM jobs WHERE locked_until > now()"
            )

            async def all_done() -> bool:
                return len(peer.received) >= FOLLOWERS and await ctx.store.queue_depth() == {}

            # Then the parent starts them again and they finish the fan-out
            await eventually(all_done, timeout=40, message="the rest of the fan-out")
            assert await ctx.store.count_failed_jobs() == {}
        restarted = await eventually(all_started, message="three children again")
        assert set(restarted["coopfed"]).isdisjoint(kinds["coopfed"])
        assert restarted["postgres"] == kinds["postgres"]  # PostgreSQL was never restarted
        async with http.get(f"{settings.base_url}/health") as resp:
            assert resp.status == 200
        # And every inbox got the post, verified, at most the in-flight ones twice
        got = Counter(r.path for r in peer.received)
        assert set(got) == {f"/users/f{i}/inbox" for i in range(FOLLOWERS)}
        assert {r.body["id"] for r in peer.received} == {create["id"]}
        assert all(r.verified for r in peer.received)
        assert FOLLOWERS // 4 <= at_kill < FOLLOWERS
        assert sum(got.values()) - FOLLOWERS <= in_flight
        # When the parent gets SIGTERM
        every = [proc.pid, *restarted["coopfed"], *restarted["postgres"]]
        proc.send_signal(signal.SIGTERM)
        # Then it exits 0 and every child, PostgreSQL included, is gone
        assert await asyncio.wait_for(proc.wait(), 30) == 0, log.read_text()
        assert all(pid_gone(pid) for pid in every), [p for p in every if not pid_gone(p)]
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        await peer.stop()


async def test_ctrl_c_stops_every_process(
    http: aiohttp.ClientSession, tmp_path: Path, data_root: Path
) -> None:
    # Given a node of 2 web processes (each running the workers), embedded PostgreSQL
    settings = Settings(port=free_port(), data_dir=data_root / "node")
    log = tmp_path / "node.log"
    proc = await start(settings, log, "--web-processes", "2")
    try:
        await wait_healthy(http, proc, settings.base_url, log.read_text)
        kinds = node_children(proc.pid)
        assert len(kinds["coopfed"]) == 2 and len(kinds["postgres"]) == 1
        # When Ctrl-C is pressed (SIGINT to the whole process group)
        os.killpg(proc.pid, signal.SIGINT)
        # Then all of them stop and the parent exits 0
        assert await asyncio.wait_for(proc.wait(), 30) == 0, log.read_text()
        every = kinds["coopfed"] + kinds["postgres"]
        assert all(pid_gone(pid) for pid in every)
        assert "Traceback" not in log.read_text()
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def hold_request(port: int) -> asyncio.StreamWriter:
    """An inbox POST whose body never finishes: a request in the web process's hands."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /inbox HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/activity+json\r\nContent-Length: 100\r\n\r\n{"
    )
    await writer.drain()
    return writer


async def test_worker_processes_give_way_while_the_web_processes_are_busy(
    http: aiohttp.ClientSession, tmp_path: Path, data_root: Path
) -> None:
    # Given a node of 1 web process and 1 worker process that yields for up to 30 s
    settings = Settings(port=free_port(), data_dir=data_root / "node", allow_private_addresses=True)
    log = tmp_path / "node.log"
    proc = await start(settings, log, "--worker-processes", "1", "--worker-yield-seconds", "30")
    peer = await FakePeer(cache_keys=True).start()
    held: list[asyncio.StreamWriter] = []
    try:
        await wait_healthy(http, proc, settings.base_url, log.read_text)
        dsn = running_dsn(embedded_dir(settings))
        assert dsn is not None
        async with open_node(settings, dsn, pool_size=2, migrate=False) as ctx:
            coop = await ctx.coop_actor()
            follower = remote_follower(peer.base, "f0", shared_inbox=False)
            await add_followers(ctx.store, coop.id, [follower])

            async def received(n: int) -> bool:
                return len(peer.received) >= n

            # When the web process has BUSY_REQUESTS requests in hand and the coop posts
            held = [await hold_request(settings.port) for _ in range(BUSY_REQUESTS)]
            await asyncio.sleep(0.5)  # they reach the inbox handler, waiting for bodies
            await post_note(ctx, coop, "Bread at noon")
            await asyncio.sleep(3)
            # Then the worker gives way: the delivery waits in the queue
            assert peer.received == []
            assert await ctx.store.queue_depth() == {"deliver": 1}
            # When those requests end
            for writer in held:
                writer.close()
            # Then the delivery goes out at once, and later ones without waiting
            await eventually(lambda: received(1), timeout=10, message="the held delivery")
            await post_note(ctx, coop, "Soup at one")
            await eventually(lambda: received(2), timeout=10, message="the next delivery")
        assert "Traceback" not in log.read_text()
    finally:
        for writer in held:
            writer.close()
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        await peer.stop()

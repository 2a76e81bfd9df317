"""The job runner on a real store, and several worker processes sharing one queue."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import asyncpg
import pytest

from coopfed.state_file import save_identity
from federation.jobs import FailJob, JobRunner, RetryJob, RetryPolicy
from federation.store import Job, Store, create_pool
from outbox.publish import post_note
from tests.support.cli import COOPFED
from tests.support.fakepeer import FakePeer
from tests.support.followers import add_followers, remote_follower
from tests.support.nodes import NodeFactory, clean_database, database_dsn, eventually


@pytest.fixture
async def store(pg_admin_dsn: str) -> AsyncIterator[Store]:
    dsn = await database_dsn(pg_admin_dsn, "jobs_unit")
    await clean_database(dsn)
    pool = await create_pool(dsn, max_size=6)
    try:
        yield Store(pool)
    finally:
        await pool.close()


def runner(store: Store, handlers: dict[str, Any], **options: Any) -> JobRunner:
    values: dict[str, Any] = {
        "concurrency": 4,
        "lease_seconds": 5.0,
        "policy": RetryPolicy(scale=1.0),
        "poll_interval": 0.05,
        "rng": random.Random(7),
    }
    values.update(options)
    return JobRunner(store=store, handlers=handlers, **values)


async def job_rows(store: Store) -> list[dict[str, Any]]:
    rows = await store.pool.fetch(
        """SELECT id, kind, payload, attempts, last_error, locked_until,
                  extract(epoch FROM run_at - now()) AS due_in
           FROM jobs ORDER BY id"""
    )
    return [dict(r) for r in rows]


async def failed_rows(store: Store) -> list[tuple[Any, ...]]:
    rows = await store.pool.fetch(
        "SELECT kind, payload, attempts, last_error FROM failed_jobs ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def make_due(store: Store) -> None:
    await store.pool.execute("UPDATE jobs SET run_at = now()")


# -- the retry policy --------------------------------------------------------


def test_retry_delays_grow_like_mastodon() -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    for attempts in range(1, 17):
        # n**4 + 15 seconds plus a jitter of up to n**4 / 2
        low, high = attempts**4 + 15, 1.5 * attempts**4 + 15
        samples = [policy.delay(attempts, rng) for _ in range(200)]
        assert all(low <= s <= high for s in samples), (attempts, min(samples), max(samples))
        # and the jitter spreads over its whole range
        assert min(samples) < low + 0.1 * (high - low)
        assert max(samples) > high - 0.1 * (high - low)
    # The minimal delays grow strictly; the 15 retries of 16 attempts wait 2.07 to 3.10 days
    lows = [n**4 + 15 for n in range(1, 16)]
    assert lows == sorted(set(lows))
    assert 2.0 < sum(lows) / 86400 < 2.1
    assert 3.0 < sum(1.5 * n**4 + 15 for n in range(1, 16)) / 86400 < 3.1


def test_retry_scale_shrinks_every_delay() -> None:
    full = RetryPolicy().delay(3, random.Random(42))
    scaled = RetryPolicy(scale=0.01).delay(3, random.Random(42))
    assert scaled == pytest.approx(full * 0.01)
    assert 0.96 <= scaled <= 1.365


# -- the runner --------------------------------------------------------------


async def test_runner_runs_handlers_of_its_kinds(store: Store) -> None:
    # Given three jobs the runner handles and one of another kind
    seen: list[dict[str, Any]] = []

    async def echo(job: Job) -> None:
        seen.append(job.payload)

    for n in range(3):
        await store.enqueue("echo", {"n": n}, max_attempts=3)
    await store.enqueue("other", {"n": 99}, max_attempts=3)
    # When the runner works until idle
    jobs = runner(store, {"echo": echo})
    await jobs.run_until_idle(timeout=10)
    # Then each of its jobs ran once and was deleted; the other kind is untouched
    assert sorted(p["n"] for p in seen) == [0, 1, 2]
    assert jobs.processed == 3
    assert await store.queue_depth() == {"other": 1}
    assert await failed_rows(store) == []


async def test_retry_job_delay_is_honoured(store: Store) -> None:
    # Given a handler that asks to be retried in 30 s
    async def later(job: Job) -> None:
        raise RetryJob("not yet", delay=30)

    await store.enqueue("later", {}, max_attempts=5)
    # When it runs
    await runner(store, {"later": later}).run_until_idle(timeout=10)
    # Then the job waits 30 s (not the backoff), unlocked, with the error recorded
    [row] = await job_rows(store)
    assert (row["attempts"], row["last_error"], row["locked_until"]) == (1, "not yet", None)
    assert 29 < row["due_in"] <= 30


async def test_retry_job_runs_again_after_its_delay(store: Store) -> None:
    # Given a handler that asks for a retry in 0.3 s once, then succeeds
    calls: list[float] = []
    loop = asyncio.get_running_loop()

    async def flaky(job: Job) -> None:
        calls.append(loop.time())
        if len(calls) == 1:
            raise RetryJob("busy", delay=0.3)

    await store.enqueue("flaky", {}, max_attempts=5)
    jobs = runner(store, {"flaky": flaky})
    task = asyncio.create_task(jobs.run())
    try:
        # When the runner runs
        await eventually(lambda: _at_least(jobs.processed, 1), timeout=5, message="success")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Then the second attempt came after the requested delay, and the job is done
    assert len(calls) == 2
    assert 0.3 <= calls[1] - calls[0] < 1.5
    assert await store.queue_depth() == {}


async def _at_least(value: int, minimum: int) -> bool:
    return value >= minimum


async def test_fail_job_ends_the_job(store: Store) -> None:
    # Given a handler that gives up
    calls = 0

    async def hopeless(job: Job) -> None:
        nonlocal calls
        calls += 1
        raise FailJob("cannot ever work")

    await store.enqueue("hopeless", {"x": 1}, max_attempts=5)
    # When it runs
    jobs = runner(store, {"hopeless": hopeless})
    await jobs.run_until_idle(timeout=10)
    # Then it ran once and the job moved to failed_jobs with the reason
    assert calls == 1
    assert jobs.failed == 1
    assert await store.queue_depth() == {}
    assert await failed_rows(store) == [("hopeless", {"x": 1}, 1, "cannot ever work")]


async def test_other_exceptions_are_retried_with_backoff(store: Store) -> None:
    # Given a handler that crashes once, then works
    calls = 0

    async def crashy(job: Job) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("boom")

    await store.enqueue("crashy", {}, max_attempts=5)
    jobs = runner(store, {"crashy": crashy}, rng=random.Random(3))
    # When it runs the first time
    await jobs.run_until_idle(timeout=10)
    # Then the error is recorded and the job is due after the policy's delay
    expected = RetryPolicy().delay(1, random.Random(3))
    [row] = await job_rows(store)
    assert (row["attempts"], row["last_error"]) == (1, "ValueError: boom")
    assert row["locked_until"] is None
    assert expected - 1 < row["due_in"] <= expected
    # When it is due again
    await make_due(store)
    await jobs.run_until_idle(timeout=10)
    # Then the retry succeeds and the job is gone
    assert (calls, jobs.processed) == (2, 1)
    assert await store.queue_depth() == {}
    assert await failed_rows(store) == []


async def test_a_job_that_hangs_is_stopped_and_retried(store: Store) -> None:
    # Given a handler that never returns (say a hand-over that lost its caller)
    async def hangs(job: Job) -> None:
        await asyncio.Event().wait()

    await store.enqueue("hangs", {}, max_attempts=5)
    jobs = runner(store, {"hangs": hangs}, time_limit=0.2)
    # When it runs
    await jobs.run_until_idle(timeout=10)
    # Then it is stopped at the time limit and waits for its retry, its lease released
    [row] = await job_rows(store)
    assert (row["attempts"], row["last_error"]) == (1, "stopped after 0.2 s")
    assert row["locked_until"] is None
    assert jobs.retried == 1


async def test_a_runner_gives_way_while_the_node_is_busy_but_never_for_ever(
    store: Store,
) -> None:
    # Given a runner told that the node is busy (its web processes have requests in hand)
    loop = asyncio.get_running_loop()
    busy = True
    ran_at: list[float] = []

    async def work(job: Job) -> None:
        ran_at.append(loop.time())

    async def runs(n: int) -> bool:
        return len(ran_at) >= n

    jobs = runner(store, {"work": work}, yield_to=lambda: busy, max_yield=0.5)
    queued_at = loop.time()
    await store.enqueue("work", {}, max_attempts=3)
    task = asyncio.create_task(jobs.run())
    try:
        # When it stays busy
        await eventually(lambda: runs(1), timeout=10, message="the job run anyway")
        # Then the job waited, but no longer than the runner yields
        assert ran_at[0] - queued_at >= 0.45
        assert jobs.yielded >= 0.45
        # When the node is no longer busy, the runner stops giving way at once
        yielded = jobs.yielded
        busy = False
        await store.enqueue("work", {}, max_attempts=3)
        await eventually(lambda: runs(2), timeout=10, message="the second job")
        assert jobs.yielded - yielded < 0.45  # it had been yielding again: it stopped
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_gives_up_after_max_attempts(store: Store) -> None:
    # Given a handler that always crashes and a job allowed 2 attempts
    async def broken(job: Job) -> None:
        raise RuntimeError("nope")

    await store.enqueue("broken", {"y": 2}, max_attempts=2)
    jobs = runner(store, {"broken": broken})
    # When it runs twice
    await jobs.run_until_idle(timeout=10)
    assert len(await job_rows(store)) == 1
    await make_due(store)
    await jobs.run_until_idle(timeout=10)
    # Then it is kept in failed_jobs with "gave up" and the last error
    assert await failed_rows(store) == [("broken", {"y": 2}, 2, "gave up: RuntimeError: nope")]
    assert await store.queue_depth() == {}
    assert jobs.failed == 1


async def test_cancelling_the_runner_keeps_the_job_for_later(store: Store) -> None:
    # Given a runner whose handler is busy with a job
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow(job: Job) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    await store.enqueue("slow", {"z": 3}, max_attempts=5)
    jobs = runner(store, {"slow": slow}, lease_seconds=0.5)
    task = asyncio.create_task(jobs.run())
    await asyncio.wait_for(started.wait(), 5)
    # When the runner task is cancelled (the process stops)
    task.cancel()
    # Then the cancellation propagates through the runner and into the handler
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()
    # And the job is neither deleted nor failed: it stays leased, with no error
    [row] = await job_rows(store)
    assert (row["attempts"], row["last_error"]) == (1, None)
    assert isinstance(row["locked_until"], datetime)
    assert await failed_rows(store) == []
    assert await store.claim_jobs(limit=5, lease_seconds=5) == []

    # And once its lease runs out any worker can claim it again
    async def claim() -> list[Job]:
        return await store.claim_jobs(limit=5, lease_seconds=5)

    [again] = await eventually(claim, timeout=5, message="the lease to run out")
    assert (again.kind, again.payload, again.attempts) == ("slow", {"z": 3}, 2)


async def test_concurrency_bound_is_respected(store: Store) -> None:
    # Given twelve jobs that each take a while
    active = 0
    peak = 0

    async def busy(job: Job) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1

    await store.enqueue_many("busy", [{"n": n} for n in range(12)], max_attempts=3)
    # When a runner with a concurrency of 3 works through them
    jobs = runner(store, {"busy": busy}, concurrency=3)
    await jobs.run_until_idle(timeout=10)
    # Then never more than 3 ran at once, and the bound was used
    assert peak == 3
    assert jobs.processed == 12
    assert await store.queue_depth() == {}


class FlakyStore(Store):
    """A store whose next claims fail as when PostgreSQL is shut down by an admin."""

    claim_failures = 2

    async def claim_jobs(self, **options: Any) -> list[Job]:
        if self.claim_failures > 0:
            self.claim_failures -= 1
            raise asyncpg.exceptions.AdminShutdownError(
                "terminating connection due to administrator command"
            )
        return await super().claim_jobs(**options)


async def test_runner_survives_database_errors_while_claiming(store: Store) -> None:
    # Given a runner whose first two claims fail with a server-side error
    done = asyncio.Event()

    async def work(job: Job) -> None:
        done.set()

    flaky = FlakyStore(store.pool)
    await flaky.enqueue("work", {}, max_attempts=3)
    jobs = runner(flaky, {"work": work})
    task = asyncio.create_task(jobs.run())
    try:
        # When it keeps running
        await asyncio.wait_for(done.wait(), 5)
        # Then it claimed again after the errors and ran the job
        await eventually(lambda: _at_least(jobs.processed, 1), timeout=5, message="completion")
        assert not task.done()
        assert flaky.claim_failures == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# -- several worker processes ----------------------------------------------


async def test_two_worker_processes_share_one_queue(nodes: NodeFactory, tmp_path: Path) -> None:
    # Given a node without in-process workers and 100 followers, each with a personal
    # inbox, on a slow-ish server
    node = await nodes("a", workers=0)
    peer = await FakePeer(cache_keys=True).start()
    procs: list[asyncio.subprocess.Process] = []
    logs: list[IO[bytes]] = []
    try:
        peer.inbox_delay = 0.01
        coop = await node.ctx.coop_actor()
        followers = [remote_follower(peer.base, f"f{i}", shared_inbox=False) for i in range(100)]
        await add_followers(node.ctx.store, coop.id, followers)
        # And two `coopfed worker` processes attached to the node's database
        save_identity(node.settings)
        env = {
            **os.environ,
            "COOPFED_RETRY_SCALE": "0.01",
            "COOPFED_JOB_LEASE_SECONDS": "30",
            "COOPFED_DELIVERY_TIMEOUT_SECONDS": "10",
        }
        for n in range(2):
            out = (tmp_path / f"worker{n}.out").open("wb")
            err = (tmp_path / f"worker{n}.err").open("wb")
            logs += [out, err]
            procs.append(
                await asyncio.create_subprocess_exec(
                    str(COOPFED),
                    "-v",
                    "worker",
                    "--database-url",
                    node.dsn,
                    "--data-dir",
                    str(node.settings.data_dir),
                    stdout=out,
                    stderr=err,
                    env=env,
                )
            )

        async def both_started() -> bool:
            return all(b"worker for" in (tmp_path / f"worker{n}.out").read_bytes() for n in (0, 1))

        await eventually(both_started, timeout=20, message="two workers to start")

        # When the coop posts three times (100 deliveries queued by each post)
        posts = [await post_note(node.ctx, coop, f"Post {n}") for n in range(3)]

        async def all_delivered() -> bool:
            return len(peer.received) >= 300 and await node.ctx.store.queue_depth() == {}

        await eventually(all_delivered, timeout=30, message="300 deliveries")
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await proc.wait()
        await peer.stop()
    for file in logs:
        file.close()
    delivered = [(tmp_path / f"worker{n}.err").read_text().count(" delivered ") for n in (0, 1)]
    # Then every inbox got every post exactly once, each POST verified
    got = Counter((r.path, r.body["id"]) for r in peer.received)
    expected = {(f"/users/f{i}/inbox", p["id"]) for i in range(100) for p in posts}
    assert set(got) == expected
    assert set(got.values()) == {1}
    assert all(r.verified for r in peer.received)
    assert await node.ctx.store.count_failed_jobs() == {}
    # And both processes did part of the work
    assert sum(delivered) == 300, delivered
    assert min(delivered) > 0, delivered
    print(f"deliveries per worker process: {delivered}")

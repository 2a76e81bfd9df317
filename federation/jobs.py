"""Background work: a runner that claims persisted jobs and calls their handlers.

Jobs are rows (``federation/store/queue.py``).  Any number of runners, in any
number of processes, share one database: a claim is ``FOR UPDATE SKIP LOCKED``
with a lease.  A handler finishes normally (the job is deleted), raises
``RetryJob`` or any other exception (retried with exponential backoff and
jitter, up to the job's maximum attempts) or raises ``FailJob`` (ended now and
kept in ``failed_jobs``).  A handler that runs past ``time_limit`` is cancelled and
retried, so a job can never hang on to its renewed lease for ever.  A runner given
``yield_to`` claims nothing new while it says the node is busy answering requests
(at most ``max_yield`` seconds before each claim, so the queue always moves).
``CancelledError`` is never swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import asyncpg

from federation.errors import DATABASE_DOWN
from federation.metrics import Metrics
from federation.store import NOTIFY_CHANNEL, Job, Store

log = logging.getLogger(__name__)

JobHandler = Callable[[Job], Awaitable[None]]

# Longer than any handler's own bounded network waits (a delivery, a backfill).
JOB_TIME_LIMIT = 600.0
# How often a yielding runner looks again, and how long it yields at most per claim.
YIELD_STEP = 0.02
MAX_YIELD = 1.0


class RetryJob(Exception):
    """Try again later (optionally after ``delay`` seconds instead of the backoff)."""

    def __init__(self, error: str, *, delay: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.delay = delay


class FailJob(Exception):
    """Give up on this job now: retrying cannot help."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Mastodon's delivery backoff: ``n**4 + 15 + rand(0, n**4 / 2)`` seconds.

    With 16 attempts the total wait is about two to three days.  ``scale``
    shrinks every delay (tests use it to retry within seconds).
    """

    scale: float = 1.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        base = attempts**4 + 15
        jitter = rng.uniform(0, 0.5 * attempts**4)
        return (base + jitter) * self.scale


class JobRunner:
    def __init__(
        self,
        *,
        store: Store,
        handlers: Mapping[str, JobHandler],
        concurrency: int = 32,
        lease_seconds: float = 60.0,
        policy: RetryPolicy | None = None,
        poll_interval: float = 1.0,
        rng: random.Random | None = None,
        name: str = "worker",
        metrics: Metrics | None = None,
        time_limit: float = JOB_TIME_LIMIT,
        yield_to: Callable[[], bool] | None = None,
        max_yield: float = MAX_YIELD,
    ) -> None:
        self.store = store
        self.time_limit = time_limit
        self.yield_to = yield_to
        self.max_yield = max_yield
        self.yielded = 0.0  # seconds spent giving way (read by the tests)
        self.handlers = dict(handlers)
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.policy = policy or RetryPolicy()
        self.poll_interval = poll_interval
        self.rng = rng or random.Random()
        self.name = name
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._job_ids: dict[asyncio.Task[None], int] = {}
        self.processed = 0
        self.failed = 0
        self.retried = 0
        # Shared with the node (``/metrics``): retries counted by job kind.
        self.metrics = metrics

    async def run(self) -> None:
        """Claim and run jobs until cancelled."""
        listener = asyncio.create_task(self._listen(), name=f"{self.name}-listen")
        renewer = asyncio.create_task(self._renew_leases(), name=f"{self.name}-leases")
        try:
            while True:
                await self._give_way()
                try:
                    claimed = await self._claim_batch()
                except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
                    # e.g. AdminShutdownError while PostgreSQL restarts: never let the
                    # worker task die silently; claim again after a pause.
                    log.warning("%s: database unavailable (%r); retrying", self.name, exc)
                    await asyncio.sleep(self.poll_interval)
                    continue
                except Exception:  # e.g. a socket reset under the pool: the worker lives on
                    log.exception("%s: claiming jobs failed; retrying", self.name)
                    await asyncio.sleep(self.poll_interval)
                    continue
                if claimed == 0:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), self.poll_interval)
        finally:
            listener.cancel()
            renewer.cancel()
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(listener, renewer, *self._running, return_exceptions=True)

    async def _give_way(self) -> None:
        """Wait while ``yield_to()`` is true, for ``max_yield`` seconds at most."""
        if self.yield_to is None or not self.yield_to():
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.max_yield
        while self.yield_to() and loop.time() < deadline:
            await asyncio.sleep(YIELD_STEP)
        self.yielded += loop.time() - started

    async def _renew_leases(self) -> None:
        """Extend the leases of running jobs, so a slow job is never run twice.

        Only a runner that is alive renews: when a process dies, its leases run
        out and its jobs are claimed again.
        """
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            ids = list(self._job_ids.values())
            if not ids:
                continue
            try:
                await self.store.extend_leases(ids, lease_seconds=self.lease_seconds)
            except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
                log.warning("%s: could not renew leases: %r", self.name, exc)

    async def run_until_idle(self, timeout: float = 30.0) -> None:
        """Process what is due now and return (for CLI commands and tests)."""
        async with asyncio.timeout(timeout):
            while True:
                claimed = await self._claim_batch()
                if claimed == 0 and not self._running:
                    return
                if claimed == 0:
                    await asyncio.sleep(0.01)

    async def _claim_batch(self) -> int:
        free = self.concurrency - len(self._running)
        # A busy runner claims in batches (a quarter of its slots at least), not
        # one job each time one ends: one claim query serves many jobs.
        if self._running and free < max(1, self.concurrency // 4):
            await asyncio.wait(set(self._running), return_when=asyncio.FIRST_COMPLETED)
            return 1
        jobs = await self.store.claim_jobs(
            limit=free, lease_seconds=self.lease_seconds, kinds=list(self.handlers)
        )
        for job in jobs:
            task = asyncio.create_task(self._run_job(job), name=f"{self.name}-job-{job.id}")
            self._running.add(task)
            self._job_ids[task] = job.id
            task.add_done_callback(self._forget)
        return len(jobs)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._job_ids.pop(task, None)

    async def _run_job(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        try:
            await self._within_time_limit(handler(job))
        except asyncio.CancelledError:
            raise
        except FailJob as exc:
            self.failed += 1
            log.info("%s: job %s (%s) failed: %s", self.name, job.id, job.kind, exc.error)
            await self._settle(self.store.fail_job(job.id, error=exc.error))
        except Exception as exc:
            error = exc.error if isinstance(exc, RetryJob) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, (RetryJob, *DATABASE_DOWN)):
                log.exception("%s: job %s (%s) raised", self.name, job.id, job.kind)
            if job.attempts >= job.max_attempts:
                self.failed += 1
                await self._settle(self.store.fail_job(job.id, error=f"gave up: {error}"))
                return
            delay = exc.delay if isinstance(exc, RetryJob) and exc.delay is not None else None
            if delay is None:
                delay = self.policy.delay(job.attempts, self.rng)
            self.retried += 1
            if self.metrics is not None:
                self.metrics.count_retry(job.kind)
            await self._settle(self.store.retry_job(job.id, delay_seconds=delay, error=error))
        else:
            self.processed += 1
            await self._settle(self.store.complete_job(job.id))

    async def _within_time_limit(self, work: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(self.time_limit) as limit:
                await work
        except TimeoutError as exc:
            if not limit.expired():
                raise  # the handler's own timeout
            log.warning("%s: a job ran past %.0f s and was stopped", self.name, self.time_limit)
            raise RetryJob(f"stopped after {self.time_limit:g} s") from exc

    async def _settle(self, update: Awaitable[None]) -> None:
        """Record a job's outcome; if the database is down the lease runs out and
        the job is simply run again later, so nothing is lost."""
        try:
            await update
        except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
            log.warning("%s: could not record a job outcome: %r", self.name, exc)

    async def _listen(self) -> None:
        """Wake up as soon as a job is queued (PostgreSQL NOTIFY), in any process."""
        while True:
            try:
                async with self.store.pool.acquire() as conn:
                    await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                    try:
                        while not conn.is_closed():
                            await asyncio.sleep(self.poll_interval * 5)
                    finally:
                        if not conn.is_closed():
                            await conn.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
                # Releasing a dead connection while cancelled raises this in place of
                # CancelledError: never let it swallow the cancellation (stop would hang).
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from exc
                log.debug("%s: listener lost (%r)", self.name, exc)
                await asyncio.sleep(self.poll_interval)

    def _on_notify(self, *args: object) -> None:
        self._wakeup.set()

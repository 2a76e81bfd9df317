"""SQL for the job queue: persisted rows, claimed with ``FOR UPDATE SKIP LOCKED``.

A claim takes a lease (``locked_until``).  A worker that dies leaves its jobs
locked until the lease runs out; then any worker, in any process, takes them
again.  Nothing is lost when a node stops in the middle of a fan-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from federation.store.batching import coalescer
from federation.store.records import Job

NOTIFY_CHANNEL = "coopfed_jobs"


class QueueQueries:
    pool: asyncpg.Pool

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        max_attempts: int,
        run_at: datetime | None = None,
    ) -> int:
        job_id = await self.pool.fetchval(
            """INSERT INTO jobs (kind, payload, max_attempts, run_at)
               VALUES ($1, $2, $3, coalesce($4, now())) RETURNING id""",
            kind,
            payload,
            max_attempts,
            run_at,
        )
        await self.pool.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, kind)
        return int(job_id)

    async def enqueue_many(
        self, kind: str, payloads: Sequence[dict[str, Any]], *, max_attempts: int
    ) -> int:
        """Queue many jobs in one round trip (a fan-out to thousands of inboxes)."""
        if not payloads:
            return 0
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO jobs (kind, payload, max_attempts)
                   SELECT $1, p, $3 FROM unnest($2::jsonb[]) AS p""",
                kind,
                list(payloads),
                max_attempts,
            )
            await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, kind)
        return len(payloads)

    async def claim_jobs(
        self, *, limit: int, lease_seconds: float, kinds: Sequence[str] | None = None
    ) -> list[Job]:
        rows = await self.pool.fetch(
            """WITH picked AS (
                   SELECT id FROM jobs
                   WHERE run_at <= now()
                     AND (locked_until IS NULL OR locked_until < now())
                     AND ($3::text[] IS NULL OR kind = ANY($3))
                   ORDER BY run_at, id
                   LIMIT $1
                   FOR UPDATE SKIP LOCKED)
               UPDATE jobs j
               SET locked_until = now() + make_interval(secs => $2), attempts = j.attempts + 1
               FROM picked WHERE j.id = picked.id
               RETURNING j.id, j.kind, j.payload, j.attempts, j.max_attempts, j.run_at,
                         j.last_error""",
            limit,
            lease_seconds,
            list(kinds) if kinds is not None else None,
        )
        return [Job(**dict(r)) for r in rows]

    async def extend_leases(self, job_ids: Sequence[int], *, lease_seconds: float) -> None:
        await self.pool.execute(
            """UPDATE jobs SET locked_until = now() + make_interval(secs => $2)
               WHERE id = ANY($1::bigint[])""",
            list(job_ids),
            lease_seconds,
        )

    async def complete_job(self, job_id: int) -> None:
        """Delete a finished job (concurrent calls share one statement and commit)."""
        await coalescer(self, "complete_job", self._complete_jobs).submit(job_id)

    async def _complete_jobs(self, job_ids: list[int]) -> list[None]:
        await self.pool.execute("DELETE FROM jobs WHERE id = ANY($1::bigint[])", job_ids)
        return [None] * len(job_ids)

    async def retry_job(self, job_id: int, *, delay_seconds: float, error: str) -> None:
        await self.pool.execute(
            """UPDATE jobs SET run_at = now() + make_interval(secs => $2),
                   locked_until = NULL, last_error = $3
               WHERE id = $1""",
            job_id,
            delay_seconds,
            error[:2000],
        )

    async def fail_job(self, job_id: int, *, error: str) -> None:
        """End a job for good, keeping it in ``failed_jobs`` for the admin."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """WITH gone AS (DELETE FROM jobs WHERE id = $1 RETURNING *)
                   INSERT INTO failed_jobs (id, kind, payload, attempts, last_error, created_at)
                   SELECT id, kind, payload, attempts, $2, created_at FROM gone
                   ON CONFLICT (id) DO NOTHING""",
                job_id,
                error[:2000],
            )

    async def queue_depth(self) -> dict[str, int]:
        rows = await self.pool.fetch("SELECT kind, count(*) FROM jobs GROUP BY kind ORDER BY kind")
        return {r[0]: int(r[1]) for r in rows}

    async def count_failed_jobs(self) -> dict[str, int]:
        rows = await self.pool.fetch(
            "SELECT kind, count(*) FROM failed_jobs GROUP BY kind ORDER BY kind"
        )
        return {r[0]: int(r[1]) for r in rows}

    async def next_job_due(self) -> datetime | None:
        value = await self.pool.fetchval(
            """SELECT min(greatest(run_at, coalesce(locked_until, run_at))) FROM jobs"""
        )
        return value if isinstance(value, datetime) else None

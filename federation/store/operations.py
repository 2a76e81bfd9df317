"""SQL for running the node: the gauges of ``/metrics`` and retiring an actor."""

from __future__ import annotations

from typing import Any

import asyncpg

from federation.store.batching import coalescer
from federation.store.records import LocalActor


class OperationsQueries:
    pool: asyncpg.Pool

    async def operations_gauges(self) -> dict[str, Any]:
        """Queue depth and failed jobs by kind, host health and follow counts, in one query."""
        row = await self.pool.fetchrow(
            """SELECT
                   (SELECT coalesce(jsonb_object_agg(kind, n), '{}'::jsonb)
                    FROM (SELECT kind, count(*) AS n FROM jobs GROUP BY kind) q) AS queue_depth,
                   (SELECT coalesce(jsonb_object_agg(kind, n), '{}'::jsonb)
                    FROM (SELECT kind, count(*) AS n FROM failed_jobs GROUP BY kind) f)
                       AS failed_jobs,
                   (SELECT count(*) FROM hosts WHERE unavailable) AS unavailable_hosts,
                   (SELECT count(*) FROM hosts) AS failing_hosts,
                   (SELECT count(*) FROM follows WHERE direction = 'inbound'
                       AND state = 'accepted') AS followers,
                   (SELECT count(*) FROM follows WHERE direction = 'outbound'
                       AND state = 'accepted') AS following"""
        )
        return {
            "queue_depth": {k: int(v) for k, v in row["queue_depth"].items()},
            "failed_jobs": {k: int(v) for k, v in row["failed_jobs"].items()},
            "unavailable_hosts": int(row["unavailable_hosts"]),
            "failing_hosts": int(row["failing_hosts"]),
            "followers": int(row["followers"]),
            "following": int(row["following"]),
        }

    async def mark_local_actor_deleted(self, actor_id: int) -> LocalActor | None:
        """Mark an actor deleted (its row and key stay: queued Deletes are signed with it).

        None when it was deleted before.
        """
        row = await self.pool.fetchrow(
            """UPDATE local_actors SET deleted_at = now(), updated_at = now()
               WHERE id = $1 AND deleted_at IS NULL RETURNING *""",
            actor_id,
        )
        return LocalActor(**dict(row)) if row else None

    async def set_suspended(self, actor_id: int, suspended: bool) -> LocalActor | None:
        """Suspend a member (its app tokens and unused sign-in codes end) or lift it.

        None when nothing changed (already so, or no such member).
        """
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """UPDATE local_actors SET suspended_at = CASE WHEN $2 THEN now() END,
                          updated_at = now()
                   WHERE id = $1 AND kind = 'member' AND deleted_at IS NULL
                     AND (suspended_at IS NULL) = $2
                   RETURNING *""",
                actor_id,
                suspended,
            )
            if row is not None and suspended:
                await self._end_access(conn, actor_id)
        return LocalActor(**dict(row)) if row else None

    async def end_member_access(self, actor_id: int) -> None:
        """A removed member: its password, app tokens and sign-in codes end."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._end_access(conn, actor_id)
            await conn.execute("DELETE FROM member_passwords WHERE local_actor_id = $1", actor_id)

    @staticmethod
    async def _end_access(conn: asyncpg.Connection, actor_id: int) -> None:
        await conn.execute(
            """UPDATE oauth_tokens SET revoked_at = now()
               WHERE local_actor_id = $1 AND revoked_at IS NULL""",
            actor_id,
        )
        await conn.execute("DELETE FROM oauth_codes WHERE local_actor_id = $1", actor_id)
        await conn.execute(
            "UPDATE tokens SET revoked_at = now() WHERE local_actor_id = $1 AND revoked_at IS NULL",
            actor_id,
        )
        await conn.execute("DELETE FROM admin_sessions WHERE local_actor_id = $1", actor_id)

    async def coop_deleted(self) -> bool:
        """The coop was deleted and no other actor (a member) is left to receive.

        Asked by every inbox request: concurrent callers share one query (each gets
        the answer of a query that started after it asked).
        """
        deleted: bool = await coalescer(self, "coop_deleted", self._coop_deleted).submit(None)
        return deleted

    async def _coop_deleted(self, callers: list[None]) -> list[bool]:
        value = await self.pool.fetchval(
            """SELECT EXISTS (SELECT 1 FROM local_actors
                              WHERE kind = 'coop' AND deleted_at IS NOT NULL)
                      AND NOT EXISTS (SELECT 1 FROM local_actors
                                      WHERE kind <> 'instance' AND deleted_at IS NULL)"""
        )
        return [bool(value)] * len(callers)

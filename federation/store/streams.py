"""SQL of live updates and polls: what the streaming API reads when PostgreSQL
tells it (``STREAM_CHANNEL``, migration 9's triggers) that something changed,
and the votes members cast in polls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from federation.store.records import StoredObject
from federation.store.timelines import OBJECT_COLUMNS

STREAM_CHANNEL = "coopfed_stream"


class StreamQueries:
    pool: asyncpg.Pool

    async def object_by_seq(self, seq: int) -> StoredObject | None:
        """The object (deleted or not) of a status id."""
        row = await self.pool.fetchrow(
            f"SELECT {OBJECT_COLUMNS} FROM objects o WHERE o.seq = $1", seq
        )
        return StoredObject(**dict(row)) if row else None

    async def notify_stream(self, payload: str) -> None:
        """Tell every web process's streams (the triggers do it for stored rows)."""
        await self.pool.execute("SELECT pg_notify($1, $2)", STREAM_CHANNEL, payload)

    # -- polls -------------------------------------------------------------------------

    async def add_poll_votes(
        self,
        local_actor_id: int,
        poll_uri: str,
        choices: Sequence[int],
        activity_ids: Sequence[str],
    ) -> bool:
        """Record a member's vote (one row a choice); False if she had voted already."""
        async with self.pool.acquire() as conn, conn.transaction():
            # One vote per member and poll, even with two requests at once.
            await conn.execute(
                """SELECT pg_advisory_xact_lock(
                       hashtext('poll:' || $1::text || ':' || $2::int::text))""",
                poll_uri,
                local_actor_id,
            )
            voted = await conn.fetchval(
                "SELECT count(*) FROM poll_votes WHERE local_actor_id = $1 AND poll_uri = $2",
                local_actor_id,
                poll_uri,
            )
            if voted:
                return False
            await conn.executemany(
                """INSERT INTO poll_votes (local_actor_id, poll_uri, choice, activity_id)
                   VALUES ($1, $2, $3, $4)""",
                [
                    (local_actor_id, poll_uri, c, a)
                    for c, a in zip(choices, activity_ids, strict=True)
                ],
            )
            return True

    async def poll_votes(
        self, local_actor_id: int, poll_uris: Sequence[str]
    ) -> dict[str, list[int]]:
        """The choices a member made in each of these polls she voted in."""
        rows = await self.pool.fetch(
            """SELECT poll_uri, choice FROM poll_votes
               WHERE local_actor_id = $1 AND poll_uri = ANY($2::text[]) ORDER BY choice""",
            local_actor_id,
            list(set(poll_uris)),
        )
        found: dict[str, list[int]] = {}
        for r in rows:
            found.setdefault(r["poll_uri"], []).append(int(r["choice"]))
        return found

    async def refresh_poll(self, uri: str, attributed_to: str, fields: dict[str, Any]) -> bool:
        """Replace a Question's counts (an Update that is not an edit)."""
        status = await self.pool.execute(
            """UPDATE objects SET body = body || $3::jsonb
               WHERE uri = $1 AND attributed_to = $2 AND type = 'Question'
                 AND deleted_at IS NULL""",
            uri,
            attributed_to,
            fields,
        )
        return bool(status == "UPDATE 1")

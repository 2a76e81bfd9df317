"""SQL for the inbox log, the outbox, stored objects and interactions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from federation.store.records import InboxActivity, StoredObject


class ActivityQueries:
    pool: asyncpg.Pool

    # -- inbox --------------------------------------------------------------

    async def accept_inbox_activity(
        self,
        *,
        activity_id: str,
        actor: str,
        type: str,
        body: dict[str, Any],
        local_actor_id: int | None,
        max_attempts: int,
    ) -> bool:
        """Persist a verified activity and queue its processing, in one statement.

        Returns False when the activity id was seen before (a replay): nothing
        is stored and nothing is queued again.
        """
        inserted = await self.pool.fetchval(
            """WITH stored AS (
                   INSERT INTO inbox_activities (activity_id, actor, type, body, local_actor_id)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (activity_id) DO NOTHING
                   RETURNING id),
               queued AS (
                   INSERT INTO jobs (kind, payload, max_attempts)
                   SELECT 'process_inbox', jsonb_build_object('inbox_id', id), $6 FROM stored
                   RETURNING id)
               SELECT count(*) FROM queued""",
            activity_id,
            actor,
            type,
            body,
            local_actor_id,
            max_attempts,
        )
        if inserted:
            await self.pool.execute("SELECT pg_notify('coopfed_jobs', 'process_inbox')")
        return bool(inserted)

    async def get_inbox_activity(self, inbox_id: int) -> InboxActivity | None:
        row = await self.pool.fetchrow(
            """SELECT id, activity_id, actor, type, body, local_actor_id
               FROM inbox_activities WHERE id = $1""",
            inbox_id,
        )
        return InboxActivity(**dict(row)) if row else None

    async def finish_inbox_activity(self, inbox_id: int, outcome: str) -> None:
        await self.pool.execute(
            "UPDATE inbox_activities SET processed_at = now(), outcome = $2 WHERE id = $1",
            inbox_id,
            outcome[:500],
        )

    async def inbox_outcomes(self, activity_id: str) -> str | None:
        value = await self.pool.fetchval(
            "SELECT outcome FROM inbox_activities WHERE activity_id = $1", activity_id
        )
        return str(value) if value is not None else None

    # -- outbox -------------------------------------------------------------

    async def record_outbox_activity(
        self,
        *,
        activity_id: str,
        local_actor_id: int,
        type: str,
        object_id: str | None,
        body: dict[str, Any],
        listed: bool,
        published: datetime,
    ) -> None:
        await self.pool.execute(
            """INSERT INTO outbox_activities
                   (id, local_actor_id, type, object_id, body, listed, published)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            activity_id,
            local_actor_id,
            type,
            object_id,
            body,
            listed,
            published,
        )

    async def get_outbox_activity(self, activity_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT body, listed FROM outbox_activities WHERE id = $1", activity_id
        )
        return dict(row) if row else None

    async def list_outbox(
        self, local_actor_id: int, *, before_seq: int | None, limit: int
    ) -> list[tuple[int, dict[str, Any]]]:
        rows = await self.pool.fetch(
            """SELECT seq, body FROM outbox_activities
               WHERE local_actor_id = $1 AND listed AND ($2::bigint IS NULL OR seq < $2)
               ORDER BY seq DESC LIMIT $3""",
            local_actor_id,
            before_seq,
            limit,
        )
        return [(r["seq"], r["body"]) for r in rows]

    async def count_outbox(self, local_actor_id: int) -> int:
        value = await self.pool.fetchval(
            "SELECT count(*) FROM outbox_activities WHERE local_actor_id = $1 AND listed",
            local_actor_id,
        )
        return int(value)

    # -- objects ------------------------------------------------------------

    async def get_object(self, uri: str) -> StoredObject | None:
        row = await self.pool.fetchrow(
            """SELECT seq, uri, local, type, attributed_to, in_reply_to, visibility, body,
                      published, updated, deleted_at
               FROM objects WHERE uri = $1""",
            uri,
        )
        return StoredObject(**dict(row)) if row else None

    async def save_object(
        self,
        *,
        uri: str,
        local: bool,
        type: str,
        attributed_to: str,
        in_reply_to: str | None,
        visibility: str,
        body: dict[str, Any],
        published: datetime | None,
        updated: datetime | None,
    ) -> str:
        """Create, or update when ``updated`` is newer.  Returns what happened:
        ``created``, ``updated``, ``stale`` (not newer) or ``deleted`` (a tombstone
        exists: a deleted URI is never re-created)."""
        row = await self.pool.fetchrow(
            """INSERT INTO objects (uri, local, type, attributed_to, in_reply_to, visibility,
                   body, published, updated)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (uri) DO UPDATE SET
                   type = excluded.type, in_reply_to = excluded.in_reply_to,
                   visibility = excluded.visibility, body = excluded.body,
                   updated = excluded.updated
               WHERE objects.deleted_at IS NULL
                 AND objects.attributed_to = excluded.attributed_to
                 AND excluded.updated IS NOT NULL
                 AND (objects.updated IS NULL OR excluded.updated > objects.updated)
               RETURNING (xmax = 0) AS created""",
            uri,
            local,
            type,
            attributed_to,
            in_reply_to,
            visibility,
            body,
            published,
            updated,
        )
        if row is not None:
            return "created" if row["created"] else "updated"
        existing = await self.get_object(uri)
        if existing is not None and existing.deleted_at is not None:
            return "deleted"
        return "stale"

    async def delete_object(self, uri: str, attributed_to: str) -> bool:
        """Replace the object by a tombstone, if ``attributed_to`` owns it."""
        status = await self.pool.execute(
            """UPDATE objects SET deleted_at = now(),
                   body = jsonb_build_object('id', uri, 'type', 'Tombstone', 'formerType', type)
               WHERE uri = $1 AND attributed_to = $2 AND deleted_at IS NULL""",
            uri,
            attributed_to,
        )
        return bool(status == "UPDATE 1")

    async def list_objects_by(self, attributed_to: str, limit: int = 50) -> list[StoredObject]:
        rows = await self.pool.fetch(
            """SELECT seq, uri, local, type, attributed_to, in_reply_to, visibility, body,
                      published, updated, deleted_at
               FROM objects WHERE attributed_to = $1 AND deleted_at IS NULL
               ORDER BY seq DESC LIMIT $2""",
            attributed_to,
            limit,
        )
        return [StoredObject(**dict(r)) for r in rows]

    async def count_local_posts(self) -> int:
        value = await self.pool.fetchval(
            "SELECT count(*) FROM objects WHERE local AND deleted_at IS NULL"
        )
        return int(value)

    # -- likes and announces -------------------------------------------------

    async def add_interaction(
        self, *, activity_id: str, type: str, actor: str, object_uri: str
    ) -> bool:
        status = await self.pool.execute(
            """INSERT INTO interactions (activity_id, type, actor, object_uri)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""",
            activity_id,
            type,
            actor,
            object_uri,
        )
        return bool(status == "INSERT 0 1")

    async def remove_interaction(
        self, *, type: str, actor: str, object_uri: str | None, activity_id: str | None
    ) -> bool:
        status = await self.pool.execute(
            """DELETE FROM interactions WHERE type = $1 AND actor = $2
                   AND (activity_id = $3 OR object_uri = $4)""",
            type,
            actor,
            activity_id,
            object_uri,
        )
        return bool(status != "DELETE 0")

    async def count_interactions(self, object_uri: str) -> dict[str, int]:
        rows = await self.pool.fetch(
            "SELECT type, count(*) FROM interactions WHERE object_uri = $1 GROUP BY type",
            object_uri,
        )
        counts = {"Like": 0, "Announce": 0}
        counts.update({r[0]: int(r[1]) for r in rows})
        return counts

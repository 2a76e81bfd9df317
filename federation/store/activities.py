"""SQL for the inbox log, the outbox, stored objects and interactions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from federation.store.batching import coalescer
from federation.store.records import InboxActivity, StoredObject

# What ``accept_inbox_activity`` did with an activity.
ACCEPTED = "accepted"
DUPLICATE = "duplicate"
QUEUE_FULL = "actor_queue_full"


@dataclass(frozen=True, slots=True)
class _InboxItem:
    activity_id: str
    actor: str
    type: str
    body: dict[str, Any]
    local_actor_id: int | None
    max_attempts: int
    max_pending: int | None


# One statement (one commit) for a batch: the per-actor pending counts, the inserts
# (of equal activity ids in a batch, the first is stored and the others are
# duplicates, as are ids stored before), one job per stored row and one NOTIFY.
# Returns, per input row in order, whether it was stored and its actor's pending
# count (counted up to the cap).
_ACCEPT_BATCH = """
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::int[],
                         $6::int[], $7::int[])
        WITH ORDINALITY AS t(activity_id, actor, type, body, local_actor_id, max_attempts,
                             max_pending, ord)),
pending AS (
    SELECT a.actor, a.cap, (SELECT count(*) FROM (
               SELECT 1 FROM inbox_activities i
               WHERE i.actor = a.actor AND i.processed_at IS NULL AND a.cap IS NOT NULL
               LIMIT a.cap) AS p) AS n
    FROM (SELECT actor, min(max_pending) AS cap FROM input GROUP BY actor) AS a),
candidates AS (
    SELECT DISTINCT ON (i.activity_id) i.*
    FROM input i JOIN pending p USING (actor)
    WHERE p.cap IS NULL OR p.n < p.cap
    ORDER BY i.activity_id, i.ord),
stored AS (
    INSERT INTO inbox_activities (activity_id, actor, type, body, local_actor_id)
    SELECT activity_id, actor, type, body, local_actor_id FROM candidates ORDER BY ord
    ON CONFLICT (activity_id) DO NOTHING
    RETURNING id, activity_id),
queued AS (
    INSERT INTO jobs (kind, payload, max_attempts)
    SELECT 'process_inbox', jsonb_build_object('inbox_id', s.id), c.max_attempts
    FROM stored s JOIN candidates c USING (activity_id)
    ORDER BY s.id
    RETURNING id),
notified AS (
    SELECT count(pg_notify('coopfed_jobs', 'process_inbox')) AS n
    FROM (SELECT 1 FROM queued LIMIT 1) AS q)
SELECT i.ord, (s.id IS NOT NULL AND c.ord = i.ord) AS stored, p.n AS pending, nt.n AS notified
FROM input i
JOIN pending p USING (actor)
LEFT JOIN candidates c USING (activity_id)
LEFT JOIN stored s USING (activity_id)
CROSS JOIN notified nt
ORDER BY i.ord
"""


@dataclass(frozen=True, slots=True)
class _ObjectItem:
    uri: str
    local: bool
    type: str
    attributed_to: str
    in_reply_to: str | None
    visibility: str
    body: dict[str, Any]
    published: datetime | None
    updated: datetime | None


# A batch of objects (distinct URIs): created, or updated when ``updated`` is newer and
# the URI is not a tombstone.  Returns the rows written, each saying if it is new.
_SAVE_OBJECTS = """
INSERT INTO objects (uri, local, type, attributed_to, in_reply_to, visibility, body,
                     published, updated)
SELECT * FROM unnest($1::text[], $2::bool[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::jsonb[], $8::timestamptz[], $9::timestamptz[])
ON CONFLICT (uri) DO UPDATE SET
    type = excluded.type, in_reply_to = excluded.in_reply_to,
    visibility = excluded.visibility, body = excluded.body, updated = excluded.updated
WHERE objects.deleted_at IS NULL
  AND objects.attributed_to = excluded.attributed_to
  AND excluded.updated IS NOT NULL
  AND (objects.updated IS NULL OR excluded.updated > objects.updated)
RETURNING uri, (xmax = 0) AS created
"""


class ActivityQueries:
    pool: asyncpg.Pool

    async def _accept_batch(self, items: list[_InboxItem]) -> list[tuple[bool, int]]:
        rows = await self.pool.fetch(
            _ACCEPT_BATCH,
            [i.activity_id for i in items],
            [i.actor for i in items],
            [i.type for i in items],
            [i.body for i in items],
            [i.local_actor_id for i in items],
            [i.max_attempts for i in items],
            [i.max_pending for i in items],
        )
        return [(bool(r["stored"]), int(r["pending"])) for r in rows]

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
        max_pending: int | None = None,
    ) -> str:
        """Persist a verified activity and queue its processing, durably.

        Returns ``ACCEPTED``; ``DUPLICATE`` when the activity id was seen before (a
        replay: nothing is stored or queued again); ``QUEUE_FULL`` when ``actor``
        already has ``max_pending`` unprocessed activities (nothing stored: the
        sender retries later).  Concurrent requests may overshoot the cap by a few.

        Concurrent calls are written together (``Coalescer``): one statement and
        one commit for all the activities that arrived while the previous commit
        was being flushed, instead of one commit (one fsync) each.
        """
        item = _InboxItem(activity_id, actor, type, body, local_actor_id, max_attempts, max_pending)
        stored, pending = await coalescer(self, "accept_inbox", self._accept_batch).submit(item)
        if stored:
            return ACCEPTED
        if max_pending is not None and pending >= max_pending:
            seen = await self.pool.fetchval(
                "SELECT 1 FROM inbox_activities WHERE activity_id = $1", activity_id
            )
            return DUPLICATE if seen else QUEUE_FULL
        return DUPLICATE

    async def pending_inbox_count(self, actor: str) -> int:
        """Unprocessed inbox activities of ``actor`` (what counts against its cap)."""
        value = await self.pool.fetchval(
            "SELECT count(*) FROM inbox_activities WHERE actor = $1 AND processed_at IS NULL",
            actor,
        )
        return int(value)

    async def get_inbox_activity(self, inbox_id: int) -> InboxActivity | None:
        """One stored activity (concurrent reads, e.g. of a claimed batch, share a query)."""
        found: InboxActivity | None = await coalescer(
            self, "get_inbox", self._get_inbox_batch
        ).submit(inbox_id)
        return found

    async def _get_inbox_batch(self, ids: list[int]) -> list[InboxActivity | None]:
        rows = await self.pool.fetch(
            """SELECT id, activity_id, actor, type, body, local_actor_id
               FROM inbox_activities WHERE id = ANY($1::bigint[])""",
            ids,
        )
        by_id = {r["id"]: InboxActivity(**dict(r)) for r in rows}
        return [by_id.get(i) for i in ids]

    async def finish_inbox_activity(self, inbox_id: int, outcome: str) -> None:
        """Record what processing did (concurrent calls share one statement and commit)."""
        await coalescer(self, "finish_inbox", self._finish_inbox_batch).submit(
            (inbox_id, outcome[:500])
        )

    async def _finish_inbox_batch(self, items: list[tuple[int, str]]) -> list[None]:
        await self.pool.execute(
            """UPDATE inbox_activities i SET processed_at = now(), outcome = v.outcome
               FROM unnest($1::bigint[], $2::text[]) AS v(id, outcome) WHERE i.id = v.id""",
            [i for i, _ in items],
            [o for _, o in items],
        )
        return [None] * len(items)

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
        exists: a deleted URI is never re-created).

        Concurrent calls are written together (``Coalescer``): the worker stores a
        busy inbox's posts with one statement and one commit per batch."""
        item = _ObjectItem(
            uri, local, type, attributed_to, in_reply_to, visibility, body, published, updated
        )
        outcome: str = await coalescer(self, "save_object", self._save_objects).submit(item)
        return outcome

    async def _save_objects(self, items: list[_ObjectItem]) -> list[str]:
        # Each round has distinct URIs (one statement cannot touch a row twice); a URI
        # saved twice in a batch is saved in order, as two calls one after the other.
        rounds: list[dict[str, int]] = []
        for index, item in enumerate(items):
            free = next((r for r in rounds if item.uri not in r), None)
            if free is None:
                free = {}
                rounds.append(free)
            free[item.uri] = index
        outcomes: list[str] = ["stale"] * len(items)
        async with self.pool.acquire() as conn, conn.transaction():
            for round_ in rounds:
                chosen = [items[i] for i in round_.values()]
                rows = await conn.fetch(
                    _SAVE_OBJECTS,
                    [i.uri for i in chosen],
                    [i.local for i in chosen],
                    [i.type for i in chosen],
                    [i.attributed_to for i in chosen],
                    [i.in_reply_to for i in chosen],
                    [i.visibility for i in chosen],
                    [i.body for i in chosen],
                    [i.published for i in chosen],
                    [i.updated for i in chosen],
                )
                done = {r["uri"]: r["created"] for r in rows}
                missed = [uri for uri in round_ if uri not in done]
                deleted: set[str] = set()
                if missed:
                    deleted = {
                        r["uri"]
                        for r in await conn.fetch(
                            "SELECT uri FROM objects WHERE uri = ANY($1::text[])"
                            " AND deleted_at IS NOT NULL",
                            missed,
                        )
                    }
                for uri, index in round_.items():
                    if uri in done:
                        outcomes[index] = "created" if done[uri] else "updated"
                    elif uri in deleted:
                        outcomes[index] = "deleted"
        return outcomes

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

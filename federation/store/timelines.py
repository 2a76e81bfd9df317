"""SQL for what a member reads in a Mastodon app: statuses, timelines, counts,
likes and boosts, and notifications.

A status id is the object's ``seq``.  A viewer (``viewer_url``/``viewer_id``,
both None for an anonymous reader) sees public and unlisted posts, its own, the
ones that mention or address it, and followers-only posts of actors it follows.

A notification is computed from its source row (a like or boost by another actor of
this node is its row in ``outbox_activities``); its id is time-ordered like a
Mastodon id: ``(epoch milliseconds << 16) | (source << 13) | (row id & 8191)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from federation.store.records import RemoteActor, StoredObject

OBJECT_COLUMNS = """o.seq, o.uri, o.local, o.type, o.attributed_to, o.in_reply_to, o.visibility,
    o.body, o.published, o.updated, o.deleted_at"""

# $V: the viewer's actor URL, $I: the viewer's local actor id (both may be NULL).
VISIBLE = """(o.visibility IN ('public', 'unlisted') OR o.attributed_to = $V
    OR o.body -> 'tag' @> jsonb_build_array(jsonb_build_object('href', $V::text))
    OR o.body -> 'tag' @> jsonb_build_object('href', $V::text)
    OR o.body -> 'to' @> to_jsonb($V::text) OR o.body -> 'cc' @> to_jsonb($V::text)
    OR (o.visibility = 'followers' AND EXISTS (
        SELECT 1 FROM follows f WHERE f.local_actor_id = $I AND f.remote_actor = o.attributed_to
          AND f.direction = 'outbound' AND f.state = 'accepted')))"""

FOLLOWED = """(SELECT remote_actor FROM follows WHERE local_actor_id = $I
    AND direction = 'outbound' AND state = 'accepted')"""

# Stored bodies hold ``tag``/``to``/``cc`` as arrays (federation/shapes.py, migration 8);
# the queries still read a single value, should one be there.
HAS_HASHTAG = """EXISTS (SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof(o.body -> 'tag')
    WHEN 'array' THEN o.body -> 'tag' WHEN 'object' THEN jsonb_build_array(o.body -> 'tag')
    ELSE '[]'::jsonb END) t
    WHERE t ->> 'type' = 'Hashtag' AND lower(t ->> 'name') = lower($T))"""

ACTIVE = """NOT EXISTS (SELECT 1 FROM outbox_activities u
    WHERE u.object_id = a.id AND u.type = 'Undo')"""


def _ms_id(time_column: str, source: int, row_id: str) -> str:
    return (
        f"(((extract(epoch FROM {time_column}) * 1000)::bigint << 16)"
        f" | {source << 13} | ({row_id} & 8191))"
    )


NOTIFICATIONS = f"""
    SELECT {_ms_id("f.created_at", 1, "f.id")} AS id,
           CASE WHEN f.state = 'accepted' THEN 'follow' ELSE 'follow_request' END AS type,
           f.created_at AS at, f.remote_actor AS account, NULL::text AS status,
           NULL::bigint AS exchange_id, NULL::bigint AS event_id
    FROM follows f WHERE f.local_actor_id = $1 AND f.direction = 'inbound'
    UNION ALL
    SELECT {_ms_id("o.received_at", 2, "o.seq")}, 'mention', o.received_at, o.attributed_to,
           o.uri, NULL, NULL
    FROM objects o
    WHERE o.deleted_at IS NULL AND o.attributed_to <> $2
      AND (o.body -> 'tag' @> jsonb_build_array(jsonb_build_object('href', $2::text))
           OR o.body -> 'tag' @> jsonb_build_object('href', $2::text)
           OR (o.visibility IN ('public', 'unlisted')
               AND o.in_reply_to IN (SELECT p.uri FROM objects p WHERE p.attributed_to = $2)))
    UNION ALL
    SELECT {_ms_id("i.created_at", 3, "hashtext(i.activity_id)")},
           CASE WHEN i.type = 'Like' THEN 'favourite' ELSE 'reblog' END, i.created_at, i.actor,
           i.object_uri, NULL, NULL
    FROM interactions i JOIN objects o ON o.uri = i.object_uri
    WHERE o.attributed_to = $2 AND o.deleted_at IS NULL
    UNION ALL
    SELECT {_ms_id("a.published", 6, "a.seq")},
           CASE WHEN a.type = 'Like' THEN 'favourite' ELSE 'reblog' END, a.published,
           a.body ->> 'actor', a.object_id, NULL, NULL
    FROM outbox_activities a JOIN objects o ON o.uri = a.object_id
    WHERE a.type IN ('Like', 'Announce') AND a.local_actor_id <> $1
      AND o.attributed_to = $2 AND o.deleted_at IS NULL AND {ACTIVE}
    UNION ALL
    SELECT {_ms_id("x.created_at", 4, "x.id")}, 'coopfed_exchange', x.created_at, x.responder,
           x.proposal_uri, x.id, NULL
    FROM exchanges x WHERE x.role = 'proposer' AND x.proposer = ANY($3::text[])
    UNION ALL
    SELECT {_ms_id("e.at", 5, "e.id")}, 'coopfed_exchange', e.at, e.by_actor, x.proposal_uri,
           x.id, e.id
    FROM exchange_events e JOIN exchanges x ON x.id = e.exchange_id
    WHERE e.refused IS NULL AND (x.proposer = ANY($3::text[]) OR x.responder = ANY($3::text[]))
"""


@dataclass(frozen=True, slots=True)
class Paging:
    """Mastodon's paging: below ``max_id``, above ``since_id`` (newest first), or just
    above ``min_id`` (the page right after it, still returned newest first)."""

    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None
    limit: int = 20


@dataclass(frozen=True, slots=True)
class NotificationRow:
    id: int
    type: str
    at: datetime
    account: str
    status: str | None
    exchange_id: int | None
    event_id: int | None


@dataclass(frozen=True, slots=True)
class StatusCounts:
    replies: int
    likes: int
    announces: int


def _bind(sql: str, names: dict[str, int]) -> str:
    for name, number in names.items():
        sql = sql.replace(f"${name}", f"${number}")
    return sql


class TimelineQueries:
    pool: asyncpg.Pool

    async def _page(
        self, where: str, args: list[Any], paging: Paging, *, order: str = "o.seq"
    ) -> list[StoredObject]:
        n = len(args)
        lower = max((v for v in (paging.since_id, paging.min_id) if v is not None), default=None)
        ascending = paging.min_id is not None
        sql = f"""SELECT {OBJECT_COLUMNS} FROM objects o
                  WHERE o.deleted_at IS NULL AND ({where})
                    AND (${n + 1}::bigint IS NULL OR {order} < ${n + 1})
                    AND (${n + 2}::bigint IS NULL OR {order} > ${n + 2})
                  ORDER BY {order} {"ASC" if ascending else "DESC"} LIMIT ${n + 3}"""
        rows = await self.pool.fetch(sql, *args, paging.max_id, lower, paging.limit)
        found = [StoredObject(**dict(r)) for r in rows]
        return found[::-1] if ascending else found

    async def home_timeline(
        self, viewer_url: str, viewer_id: int, paging: Paging
    ) -> list[StoredObject]:
        where = f"""(o.attributed_to = $V OR o.attributed_to IN {FOLLOWED}) AND {VISIBLE}"""
        return await self._page(_bind(where, {"V": 1, "I": 2}), [viewer_url, viewer_id], paging)

    async def public_timeline(
        self, *, local: bool | None, hashtag: str | None, paging: Paging
    ) -> list[StoredObject]:
        where = "o.visibility = 'public' AND ($L::boolean IS NULL OR o.local = $L)"
        if hashtag is not None:
            where += f" AND {HAS_HASHTAG}"
            return await self._page(_bind(where, {"L": 1, "T": 2}), [local, hashtag], paging)
        return await self._page(_bind(where, {"L": 1}), [local], paging)

    async def account_statuses(
        self,
        author: str,
        *,
        viewer_url: str | None,
        viewer_id: int | None,
        exclude_replies: bool,
        paging: Paging,
    ) -> list[StoredObject]:
        where = f"o.attributed_to = $A AND (NOT $R::boolean OR o.in_reply_to IS NULL) AND {VISIBLE}"
        args = [author, exclude_replies, viewer_url, viewer_id]
        return await self._page(_bind(where, {"A": 1, "R": 2, "V": 3, "I": 4}), args, paging)

    async def visible_object(
        self, seq: int, viewer_url: str | None, viewer_id: int | None
    ) -> StoredObject | None:
        sql = _bind(
            f"""SELECT {OBJECT_COLUMNS} FROM objects o
                WHERE o.seq = $S AND o.deleted_at IS NULL AND {VISIBLE}""",
            {"S": 1, "V": 2, "I": 3},
        )
        row = await self.pool.fetchrow(sql, seq, viewer_url, viewer_id)
        return StoredObject(**dict(row)) if row else None

    async def objects_by_uris(self, uris: Sequence[str]) -> list[StoredObject]:
        rows = await self.pool.fetch(
            f"SELECT {OBJECT_COLUMNS} FROM objects o WHERE o.uri = ANY($1::text[])", list(uris)
        )
        return [StoredObject(**dict(r)) for r in rows]

    async def descendants(
        self, uri: str, viewer_url: str | None, viewer_id: int | None, limit: int = 200
    ) -> list[StoredObject]:
        """Replies to ``uri`` and their replies, oldest first."""
        sql = _bind(
            f"""WITH RECURSIVE thread(uri, depth) AS (
                    SELECT uri, 1 FROM objects WHERE in_reply_to = $U AND deleted_at IS NULL
                    UNION
                    SELECT c.uri, t.depth + 1 FROM objects c JOIN thread t ON c.in_reply_to = t.uri
                    WHERE c.deleted_at IS NULL AND t.depth < 40)
                SELECT {OBJECT_COLUMNS} FROM objects o
                WHERE o.uri IN (SELECT uri FROM thread) AND {VISIBLE}
                ORDER BY o.seq LIMIT $N""",
            {"U": 1, "V": 2, "I": 3, "N": 4},
        )
        rows = await self.pool.fetch(sql, uri, viewer_url, viewer_id, limit)
        return [StoredObject(**dict(r)) for r in rows]

    async def search_statuses(self, text: str, limit: int) -> list[StoredObject]:
        rows = await self.pool.fetch(
            f"""SELECT {OBJECT_COLUMNS} FROM objects o
                WHERE o.deleted_at IS NULL AND o.visibility = 'public'
                  AND (strpos(lower(o.body ->> 'content'), lower($1)) > 0
                       OR strpos(lower(o.body ->> 'name'), lower($1)) > 0)
                ORDER BY o.seq DESC LIMIT $2""",
            text,
            limit,
        )
        return [StoredObject(**dict(r)) for r in rows]

    # -- actors --------------------------------------------------------------------

    async def remote_actors_by_uris(self, uris: Sequence[str]) -> list[RemoteActor]:
        rows = await self.pool.fetch(
            "SELECT * FROM remote_actors WHERE uri = ANY($1::text[])", list(uris)
        )
        return [RemoteActor(**dict(r)) for r in rows]

    async def search_actor_uris(self, text: str, base: str, limit: int) -> list[str]:
        """Local and known remote actors whose username or name contains ``text``."""
        rows = await self.pool.fetch(
            """(SELECT $2 || '/users/' || username AS uri, 0 AS rank FROM local_actors
                WHERE kind <> 'instance' AND deleted_at IS NULL
                  AND (strpos(lower(username), lower($1)) > 0
                       OR strpos(lower(name), lower($1)) > 0))
               UNION ALL
               (SELECT uri, 1 FROM remote_actors WHERE NOT gone
                  AND (strpos(lower(username), lower($1)) > 0
                       OR strpos(lower(name), lower($1)) > 0))
               ORDER BY rank, uri LIMIT $3""",
            text,
            base,
            limit,
        )
        return [r["uri"] for r in rows]

    async def status_stats(self, author: str) -> tuple[int, datetime | None]:
        row = await self.pool.fetchrow(
            """SELECT count(*) AS n, max(coalesce(published, received_at)) AS last FROM objects
               WHERE attributed_to = $1 AND deleted_at IS NULL
                 AND visibility IN ('public', 'unlisted')""",
            author,
        )
        return int(row["n"]), row["last"]

    # -- likes and boosts -------------------------------------------------------------

    async def status_counts(self, uris: Sequence[str]) -> dict[str, StatusCounts]:
        """Replies, likes and boosts: the peers' (interactions) and our actors' (outbox)."""
        rows = await self.pool.fetch(
            f"""SELECT u.uri,
                  (SELECT count(*) FROM objects r
                   WHERE r.in_reply_to = u.uri AND r.deleted_at IS NULL) AS replies,
                  (SELECT count(*) FROM interactions i
                   WHERE i.object_uri = u.uri AND i.type = 'Like')
                  + (SELECT count(*) FROM outbox_activities a
                     WHERE a.object_id = u.uri AND a.type = 'Like' AND {ACTIVE}) AS likes,
                  (SELECT count(*) FROM interactions i
                   WHERE i.object_uri = u.uri AND i.type = 'Announce')
                  + (SELECT count(*) FROM outbox_activities a
                     WHERE a.object_id = u.uri AND a.type = 'Announce' AND {ACTIVE}) AS announces
                FROM unnest($1::text[]) AS u(uri)""",
            list(set(uris)),
        )
        return {
            r["uri"]: StatusCounts(int(r["replies"]), int(r["likes"]), int(r["announces"]))
            for r in rows
        }

    async def own_interactions(
        self, local_actor_id: int, uris: Sequence[str]
    ) -> dict[tuple[str, str], str]:
        """(object uri, Like|Announce) -> the id of our actor's activity not undone."""
        rows = await self.pool.fetch(
            f"""SELECT a.object_id, a.type, a.id FROM outbox_activities a
                WHERE a.local_actor_id = $1 AND a.type IN ('Like', 'Announce')
                  AND a.object_id = ANY($2::text[]) AND {ACTIVE}
                ORDER BY a.seq""",
            local_actor_id,
            list(set(uris)),
        )
        return {(r["object_id"], r["type"]): r["id"] for r in rows}

    async def interaction_actors(
        self, uri: str, type: str, base: str, limit: int = 80
    ) -> list[str]:
        """Who liked (or boosted) ``uri``: peers and our own actors, newest first."""
        rows = await self.pool.fetch(
            f"""(SELECT actor, created_at AS at FROM interactions
                 WHERE object_uri = $1 AND type = $2)
                UNION ALL
                (SELECT $3 || '/users/' || l.username, a.published FROM outbox_activities a
                 JOIN local_actors l ON l.id = a.local_actor_id
                 WHERE a.object_id = $1 AND a.type = $2 AND {ACTIVE})
                ORDER BY at DESC LIMIT $4""",
            uri,
            type,
            base,
            limit,
        )
        return [r["actor"] for r in rows]

    async def outbox_seq(self, activity_id: str) -> int | None:
        value = await self.pool.fetchval(
            "SELECT seq FROM outbox_activities WHERE id = $1", activity_id
        )
        return int(value) if value is not None else None

    async def outbox_by_seq(self, seq: int) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            """SELECT seq, id, local_actor_id, type, object_id, published FROM outbox_activities
               WHERE seq = $1""",
            seq,
        )
        return dict(row) if row else None

    # -- notifications -------------------------------------------------------------------

    async def notifications(
        self,
        local_actor_id: int,
        actor_url: str,
        parties: Sequence[str],
        *,
        types: Sequence[str],
        account: str | None,
        paging: Paging,
        only_id: int | None = None,
    ) -> list[NotificationRow]:
        """A member's notifications; ``parties`` are the actors whose exchanges it sees."""
        lower = max((v for v in (paging.since_id, paging.min_id) if v is not None), default=None)
        ascending = paging.min_id is not None
        rows = await self.pool.fetch(
            f"""SELECT * FROM ({NOTIFICATIONS}) n
                WHERE n.type = ANY($4::text[]) AND ($5::text IS NULL OR n.account = $5)
                  AND ($9::bigint IS NULL OR n.id = $9)
                  AND n.id > coalesce((SELECT cleared_before FROM api_notification_marks
                                       WHERE local_actor_id = $1), 0)
                  AND n.id NOT IN (SELECT notification_id FROM api_notification_dismissals
                                   WHERE local_actor_id = $1)
                  AND ($6::bigint IS NULL OR n.id < $6) AND ($7::bigint IS NULL OR n.id > $7)
                ORDER BY n.id {"ASC" if ascending else "DESC"} LIMIT $8""",
            local_actor_id,
            actor_url,
            list(parties),
            list(types),
            account,
            paging.max_id,
            lower,
            paging.limit,
            only_id,
        )
        found = [NotificationRow(**dict(r)) for r in rows]
        return found[::-1] if ascending else found

    async def clear_notifications(self, local_actor_id: int, before: int) -> None:
        await self.pool.execute(
            """INSERT INTO api_notification_marks (local_actor_id, cleared_before) VALUES ($1, $2)
               ON CONFLICT (local_actor_id) DO UPDATE
               SET cleared_before = greatest(api_notification_marks.cleared_before, $2)""",
            local_actor_id,
            before,
        )

    async def dismiss_notification(self, local_actor_id: int, notification_id: int) -> None:
        await self.pool.execute(
            """INSERT INTO api_notification_dismissals (local_actor_id, notification_id)
               VALUES ($1, $2) ON CONFLICT DO NOTHING""",
            local_actor_id,
            notification_id,
        )

    async def exchange_notice(self, exchange_id: int, event_id: int | None) -> dict[str, Any]:
        """An exchange and one step of it; without a step, the offer that opened it."""
        row = await self.pool.fetchrow(
            """SELECT x.id AS exchange_id, x.proposal_uri, x.proposer, x.responder, x.state,
                      x.pledge, x.quantity, x.unit,
                      coalesce(e.event, 'offer') AS event, e.from_state,
                      coalesce(e.to_state, CASE WHEN e.id IS NULL THEN 'offered' END) AS to_state,
                      coalesce(e.at, x.created_at) AS at
               FROM exchanges x LEFT JOIN exchange_events e ON e.id = $2 AND e.exchange_id = x.id
               WHERE x.id = $1""",
            exchange_id,
            event_id,
        )
        return dict(row) if row else {}

    async def count_known_domains(self) -> int:
        value = await self.pool.fetchval("SELECT count(DISTINCT host) FROM remote_actors")
        return int(value)

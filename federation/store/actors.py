"""SQL for local actors, the remote actor cache and follows."""

from __future__ import annotations

from typing import Any

import asyncpg

from federation.store.batching import coalescer
from federation.store.records import Follow, LocalActor, RemoteActor


class ActorQueries:
    pool: asyncpg.Pool

    # -- local actors -------------------------------------------------------

    async def get_local_actor(self, username: str) -> LocalActor | None:
        row = await self.pool.fetchrow("SELECT * FROM local_actors WHERE username = $1", username)
        return LocalActor(**dict(row)) if row else None

    async def get_local_actor_by_id(self, actor_id: int) -> LocalActor | None:
        row = await self.pool.fetchrow("SELECT * FROM local_actors WHERE id = $1", actor_id)
        return LocalActor(**dict(row)) if row else None

    async def get_local_actor_by_kind(self, kind: str) -> LocalActor | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM local_actors WHERE kind = $1 ORDER BY id LIMIT 1", kind
        )
        return LocalActor(**dict(row)) if row else None

    async def list_local_actors(self) -> list[LocalActor]:
        rows = await self.pool.fetch("SELECT * FROM local_actors ORDER BY id")
        return [LocalActor(**dict(r)) for r in rows]

    async def create_local_actor(
        self,
        *,
        username: str,
        kind: str,
        name: str,
        summary: str,
        avatar_url: str,
        manually_approves_followers: bool,
        private_key_pem: str,
        public_key_pem: str,
    ) -> LocalActor:
        """Insert an actor; if one with this username exists, return it untouched.

        Keys are generated once and never replaced here: peers such as
        GoToSocial refuse a key that changes.
        """
        row = await self.pool.fetchrow(
            """INSERT INTO local_actors (username, kind, name, summary, avatar_url,
                   manually_approves_followers, private_key_pem, public_key_pem)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (username) DO NOTHING
               RETURNING *""",
            username,
            kind,
            name,
            summary,
            avatar_url,
            manually_approves_followers,
            private_key_pem,
            public_key_pem,
        )
        if row is None:
            existing = await self.get_local_actor(username)
            assert existing is not None
            return existing
        return LocalActor(**dict(row))

    async def update_local_profile(
        self,
        actor_id: int,
        *,
        name: str | None = None,
        summary: str | None = None,
        avatar_url: str | None = None,
        manually_approves_followers: bool | None = None,
        header_url: str | None = None,
        fields: list[dict[str, str]] | None = None,
        settings_profile: dict[str, str] | None = None,
    ) -> LocalActor:
        row = await self.pool.fetchrow(
            """UPDATE local_actors SET
                   name = coalesce($2, name),
                   summary = coalesce($3, summary),
                   avatar_url = coalesce($4, avatar_url),
                   manually_approves_followers = coalesce($5, manually_approves_followers),
                   header_url = coalesce($6, header_url),
                   fields = coalesce($7::jsonb, fields),
                   settings_profile = coalesce($8::jsonb, settings_profile),
                   updated_at = now()
               WHERE id = $1 RETURNING *""",
            actor_id,
            name,
            summary,
            avatar_url,
            manually_approves_followers,
            header_url,
            fields,
            settings_profile,
        )
        return LocalActor(**dict(row))

    # -- remote actors ------------------------------------------------------

    async def get_remote_actor(self, uri: str) -> RemoteActor | None:
        """The cached actor at ``uri`` (concurrent reads share one query)."""
        found: RemoteActor | None = await coalescer(
            self, "get_remote_actor", self._get_remote_actors
        ).submit(uri)
        return found

    async def _get_remote_actors(self, uris: list[str]) -> list[RemoteActor | None]:
        rows = await self.pool.fetch(
            "SELECT * FROM remote_actors WHERE uri = ANY($1::text[])", list(set(uris))
        )
        by_uri = {r["uri"]: RemoteActor(**dict(r)) for r in rows}
        return [by_uri.get(u) for u in uris]

    async def get_remote_actor_by_key_id(self, key_id: str) -> RemoteActor | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM remote_actors WHERE key_id = $1 ORDER BY fetched_at DESC LIMIT 1", key_id
        )
        return RemoteActor(**dict(row)) if row else None

    async def find_remote_actor_by_handle(self, username: str, host: str) -> RemoteActor | None:
        row = await self.pool.fetchrow(
            """SELECT * FROM remote_actors WHERE lower(username) = lower($1) AND host = $2
               ORDER BY fetched_at DESC LIMIT 1""",
            username,
            host,
        )
        return RemoteActor(**dict(row)) if row else None

    async def upsert_remote_actor(self, actor: RemoteActor) -> None:
        await self.pool.execute(
            """INSERT INTO remote_actors (uri, host, type, username, name, inbox, shared_inbox,
                   followers_url, key_id, public_key_pem, document, fetched_at, gone)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, false)
               ON CONFLICT (uri) DO UPDATE SET
                   host = excluded.host, type = excluded.type, username = excluded.username,
                   name = excluded.name, inbox = excluded.inbox,
                   shared_inbox = excluded.shared_inbox, followers_url = excluded.followers_url,
                   key_id = excluded.key_id, public_key_pem = excluded.public_key_pem,
                   document = excluded.document, fetched_at = excluded.fetched_at, gone = false""",
            actor.uri,
            actor.host,
            actor.type,
            actor.username,
            actor.name,
            actor.inbox,
            actor.shared_inbox,
            actor.followers_url,
            actor.key_id,
            actor.public_key_pem,
            actor.document,
            actor.fetched_at,
        )

    async def mark_remote_actor_gone(self, uri: str) -> bool:
        status = await self.pool.execute(
            "UPDATE remote_actors SET gone = true WHERE uri = $1 AND NOT gone", uri
        )
        await self.pool.execute("DELETE FROM follows WHERE remote_actor = $1", uri)
        return bool(status.endswith("1"))

    # -- follows ------------------------------------------------------------

    async def get_follow(
        self, local_actor_id: int, remote_actor: str, direction: str
    ) -> Follow | None:
        row = await self.pool.fetchrow(
            """SELECT * FROM follows
               WHERE local_actor_id = $1 AND remote_actor = $2 AND direction = $3""",
            local_actor_id,
            remote_actor,
            direction,
        )
        return Follow(**dict(row)) if row else None

    async def get_follow_by_activity(self, activity_id: str) -> Follow | None:
        row = await self.pool.fetchrow("SELECT * FROM follows WHERE activity_id = $1", activity_id)
        return Follow(**dict(row)) if row else None

    async def upsert_follow(
        self,
        *,
        local_actor_id: int,
        remote_actor: str,
        direction: str,
        state: str,
        activity_id: str,
    ) -> Follow:
        """Record a follow; a repeated Follow refreshes its activity id (as Mastodon does)."""
        row = await self.pool.fetchrow(
            """INSERT INTO follows (local_actor_id, remote_actor, direction, state, activity_id,
                   accepted_at)
               VALUES ($1, $2, $3, $4, $5, CASE WHEN $4 = 'accepted' THEN now() END)
               ON CONFLICT (local_actor_id, remote_actor, direction) DO UPDATE SET
                   activity_id = excluded.activity_id,
                   state = CASE WHEN follows.state = 'accepted' THEN 'accepted'
                                ELSE excluded.state END,
                   accepted_at = coalesce(follows.accepted_at, excluded.accepted_at)
               RETURNING *""",
            local_actor_id,
            remote_actor,
            direction,
            state,
            activity_id,
        )
        return Follow(**dict(row))

    async def accept_follow(self, follow_id: int) -> Follow | None:
        row = await self.pool.fetchrow(
            """UPDATE follows SET state = 'accepted', accepted_at = coalesce(accepted_at, now())
               WHERE id = $1 RETURNING *""",
            follow_id,
        )
        return Follow(**dict(row)) if row else None

    async def delete_follow(self, follow_id: int) -> bool:
        status = await self.pool.execute("DELETE FROM follows WHERE id = $1", follow_id)
        return bool(status == "DELETE 1")

    async def list_follows(
        self,
        local_actor_id: int,
        direction: str,
        *,
        state: str | None = "accepted",
        limit: int = 1000,
        offset: int = 0,
    ) -> list[Follow]:
        rows = await self.pool.fetch(
            """SELECT * FROM follows
               WHERE local_actor_id = $1 AND direction = $2 AND ($3::text IS NULL OR state = $3)
               ORDER BY id DESC LIMIT $4 OFFSET $5""",
            local_actor_id,
            direction,
            state,
            limit,
            offset,
        )
        return [Follow(**dict(r)) for r in rows]

    async def count_follows(
        self, local_actor_id: int, direction: str, state: str = "accepted"
    ) -> int:
        value = await self.pool.fetchval(
            """SELECT count(*) FROM follows
               WHERE local_actor_id = $1 AND direction = $2 AND state = $3""",
            local_actor_id,
            direction,
            state,
        )
        return int(value)

    async def local_actors_following(self, remote_actor: str) -> list[int]:
        """Local actors with an accepted outbound follow of ``remote_actor`` (concurrent
        reads share one query)."""
        found: list[int] = await coalescer(
            self, "local_actors_following", self._local_actors_following
        ).submit(remote_actor)
        return found

    async def _local_actors_following(self, remote_actors: list[str]) -> list[list[int]]:
        rows = await self.pool.fetch(
            """SELECT remote_actor, local_actor_id FROM follows
               WHERE remote_actor = ANY($1::text[]) AND direction = 'outbound'
                 AND state = 'accepted'
               ORDER BY local_actor_id""",
            list(set(remote_actors)),
        )
        following: dict[str, list[int]] = {}
        for r in rows:
            following.setdefault(r["remote_actor"], []).append(r["local_actor_id"])
        return [list(following.get(a, [])) for a in remote_actors]

    async def follower_inboxes(self, local_actor_id: int) -> list[str]:
        """One inbox per follower, shared inboxes de-duplicated, live actors only."""
        rows = await self.pool.fetch(
            """SELECT DISTINCT coalesce(r.shared_inbox, r.inbox) AS inbox
               FROM follows f JOIN remote_actors r ON r.uri = f.remote_actor
               WHERE f.local_actor_id = $1 AND f.direction = 'inbound' AND f.state = 'accepted'
                 AND NOT r.gone
               ORDER BY 1""",
            local_actor_id,
        )
        return [r[0] for r in rows]

    async def count_remote_rows(self) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            """SELECT (SELECT count(*) FROM remote_actors) AS remote_actors,
                      (SELECT count(*) FROM follows WHERE direction = 'inbound'
                          AND state = 'accepted') AS followers,
                      (SELECT count(*) FROM follows WHERE direction = 'inbound'
                          AND state = 'pending') AS pending_followers,
                      (SELECT count(*) FROM follows WHERE direction = 'outbound'
                          AND state = 'accepted') AS following"""
        )
        return dict(row)

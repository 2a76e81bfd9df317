"""SQL for proposals (ours and our peers'), exchanges, matches, tokens and rules."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from federation.store.records import Exchange, Match, Proposal

PROPOSAL_COLUMNS = """seq, uri, local, attributed_to, kind, title, details, action, resource,
    unit, quantity, price, currency, tags, deadline, pledged, received, status, body,
    published, updated"""
# The ``updated`` of a new version of a local proposal: strictly newer than the
# last one, by at least 1 ms (the precision of ``updated`` on the wire), in the
# order the versions were written (the row lock orders concurrent writers).
NEXT_VERSION = (
    "greatest(clock_timestamp(), coalesce(proposals.updated, proposals.published)"
    " + interval '1 millisecond')"
)


class MarketQueries:
    pool: asyncpg.Pool

    # -- proposals ------------------------------------------------------------

    async def upsert_proposal(self, p: Proposal) -> str:
        """Insert, or replace when ``updated`` is newer; ``created``/``updated``/``stale``."""
        row = await self.pool.fetchrow(
            f"""INSERT INTO proposals ({PROPOSAL_COLUMNS.replace("seq, ", "")})
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                       $16, $17, $18, $19, $20)
               ON CONFLICT (uri) DO UPDATE SET
                   kind = excluded.kind, title = excluded.title, details = excluded.details,
                   action = excluded.action, resource = excluded.resource,
                   unit = excluded.unit, quantity = excluded.quantity, price = excluded.price,
                   currency = excluded.currency, tags = excluded.tags,
                   deadline = excluded.deadline, pledged = excluded.pledged,
                   received = excluded.received, status = excluded.status,
                   body = excluded.body, updated = excluded.updated
               WHERE proposals.attributed_to = excluded.attributed_to
                 AND proposals.status <> 'deleted'
                 AND excluded.updated IS NOT NULL
                 AND (proposals.updated IS NULL OR excluded.updated > proposals.updated)
               RETURNING (xmax = 0) AS created""",
            p.uri,
            p.local,
            p.attributed_to,
            p.kind,
            p.title,
            p.details,
            p.action,
            p.resource,
            p.unit,
            p.quantity,
            p.price,
            p.currency,
            p.tags,
            p.deadline,
            p.pledged,
            p.received,
            p.status,
            p.body,
            p.published,
            p.updated,
        )
        if row is None:
            return "stale"
        return "created" if row["created"] else "updated"

    async def get_proposal(self, uri: str) -> Proposal | None:
        row = await self.pool.fetchrow(
            f"SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE uri = $1", uri
        )
        return Proposal(**dict(row)) if row else None

    async def set_proposal_status(
        self, uri: str, status: str, body: dict[str, Any] | None, updated: datetime
    ) -> bool:
        result = await self.pool.execute(
            """UPDATE proposals SET status = $2, body = coalesce($3, body), updated = $4
               WHERE uri = $1 AND status <> 'deleted'""",
            uri,
            status,
            body,
            updated,
        )
        return bool(result == "UPDATE 1")

    async def add_pledge(self, uri: str, *, pledged: Decimal, received: Decimal) -> Proposal | None:
        """Add to a local proposal's progress: a new version (see NEXT_VERSION)."""
        row = await self.pool.fetchrow(
            f"""UPDATE proposals SET pledged = pledged + $2, received = received + $3,
                   updated = {NEXT_VERSION}
               WHERE uri = $1 AND local AND status <> 'deleted' RETURNING {PROPOSAL_COLUMNS}""",
            uri,
            pledged,
            received,
        )
        return Proposal(**dict(row)) if row else None

    async def revise_proposal(self, p: Proposal) -> Proposal | None:
        """New fields and status of an open local proposal, as a new version.

        The progress (``pledged``, ``received``) stays what ``add_pledge`` made
        it; None when the proposal is not open (closed or deleted meanwhile).
        """
        row = await self.pool.fetchrow(
            f"""UPDATE proposals SET title = $2, details = $3, action = $4, resource = $5,
                   unit = $6, quantity = $7, price = $8, currency = $9, tags = $10,
                   deadline = $11, status = $12, updated = {NEXT_VERSION}
               WHERE uri = $1 AND local AND status = 'open' RETURNING {PROPOSAL_COLUMNS}""",
            p.uri,
            p.title,
            p.details,
            p.action,
            p.resource,
            p.unit,
            p.quantity,
            p.price,
            p.currency,
            p.tags,
            p.deadline,
            p.status,
        )
        return Proposal(**dict(row)) if row else None

    async def set_proposal_body(self, uri: str, body: dict[str, Any], version: datetime) -> bool:
        """Store the object built for ``version``; False if a newer version exists."""
        result = await self.pool.execute(
            "UPDATE proposals SET body = $2 WHERE uri = $1 AND updated = $3", uri, body, version
        )
        return bool(result == "UPDATE 1")

    async def search_proposals(
        self,
        *,
        kind: str | None = None,
        tag: str | None = None,
        text: str | None = None,
        coop: str | None = None,
        status: str | None = None,
        local: bool | None = None,
        now: datetime,
        limit: int = 100,
    ) -> list[Proposal]:
        """The market: filters combine; a proposal past its deadline counts as closed."""
        rows = await self.pool.fetch(
            f"""SELECT {PROPOSAL_COLUMNS} FROM proposals
               WHERE status <> 'deleted'
                 AND ($1::text IS NULL OR kind = $1)
                 AND ($2::text IS NULL OR lower($2) = ANY(tags))
                 AND ($3::text IS NULL OR search @@ plainto_tsquery('simple', $3)
                      OR title ILIKE '%' || $3 || '%' OR details ILIKE '%' || $3 || '%')
                 AND ($4::text IS NULL OR attributed_to = $4)
                 AND ($5::text IS NULL OR
                      (CASE WHEN status = 'open' AND deadline IS NOT NULL AND deadline < $7
                            THEN 'closed' ELSE status END) = $5)
                 AND ($6::boolean IS NULL OR local = $6)
               ORDER BY seq DESC LIMIT $8""",
            kind,
            tag,
            text,
            coop,
            status,
            local,
            now,
            limit,
        )
        return [Proposal(**dict(r)) for r in rows]

    async def open_proposals_of(self, attributed_to: str, now: datetime) -> list[Proposal]:
        rows = await self.pool.fetch(
            f"""SELECT {PROPOSAL_COLUMNS} FROM proposals
               WHERE attributed_to = $1 AND status = 'open'
                 AND (deadline IS NULL OR deadline >= $2)
               ORDER BY seq DESC""",
            attributed_to,
            now,
        )
        return [Proposal(**dict(r)) for r in rows]

    async def count_replies(self, uri: str) -> int:
        """Replies (any post with ``inReplyTo`` this proposal) that are not deleted."""
        value = await self.pool.fetchval(
            "SELECT count(*) FROM objects WHERE in_reply_to = $1 AND deleted_at IS NULL", uri
        )
        return int(value)

    # -- exchanges ------------------------------------------------------------

    async def create_exchange(self, **fields: Any) -> Exchange | None:
        """Insert an exchange; None when its Offer was recorded before (a replay)."""
        names = list(fields)
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        row = await self.pool.fetchrow(
            f"""INSERT INTO exchanges ({", ".join(names)}) VALUES ({placeholders})
               ON CONFLICT (offer_id) DO NOTHING RETURNING *""",
            *fields.values(),
        )
        return Exchange(**dict(row)) if row else None

    async def get_exchange(self, exchange_id: int) -> Exchange | None:
        row = await self.pool.fetchrow("SELECT * FROM exchanges WHERE id = $1", exchange_id)
        return Exchange(**dict(row)) if row else None

    async def find_exchange(
        self, *, offer_id: str | None = None, agreement_uri: str | None = None
    ) -> Exchange | None:
        row = await self.pool.fetchrow(
            """SELECT * FROM exchanges WHERE offer_id = $1 OR agreement_uri = $2 LIMIT 1""",
            offer_id,
            agreement_uri,
        )
        return Exchange(**dict(row)) if row else None

    async def move_exchange(
        self,
        exchange: Exchange,
        *,
        event: str,
        to_state: str,
        by_actor: str,
        activity_id: str | None,
        agreement: dict[str, Any] | None = None,
        agreement_uri: str | None = None,
        receipt: dict[str, Any] | None = None,
    ) -> Exchange | None:
        """Move an exchange from the state it was read in; None if it moved meanwhile."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """UPDATE exchanges SET state = $3, updated_at = now(),
                       agreement = coalesce($4, agreement),
                       agreement_uri = coalesce($5, agreement_uri),
                       receipt = coalesce($6, receipt)
                   WHERE id = $1 AND state = $2 RETURNING *""",
                exchange.id,
                exchange.state,
                to_state,
                agreement,
                agreement_uri,
                receipt,
            )
            if row is None:
                return None
            await conn.execute(
                """INSERT INTO exchange_events (exchange_id, event, from_state, to_state,
                       by_actor, activity_id) VALUES ($1, $2, $3, $4, $5, $6)""",
                exchange.id,
                event,
                exchange.state,
                to_state,
                by_actor,
                activity_id,
            )
        return Exchange(**dict(row))

    async def log_refused_event(
        self, exchange: Exchange, *, event: str, by_actor: str, activity_id: str | None, reason: str
    ) -> None:
        await self.pool.execute(
            """INSERT INTO exchange_events (exchange_id, event, from_state, by_actor,
                   activity_id, refused) VALUES ($1, $2, $3, $4, $5, $6)""",
            exchange.id,
            event,
            exchange.state,
            by_actor,
            activity_id,
            reason[:500],
        )

    async def list_exchanges(self, *, state: str | None = None, limit: int = 200) -> list[Exchange]:
        rows = await self.pool.fetch(
            """SELECT * FROM exchanges WHERE ($1::text IS NULL OR state = $1)
               ORDER BY id DESC LIMIT $2""",
            state,
            limit,
        )
        return [Exchange(**dict(r)) for r in rows]

    async def exchange_events(self, exchange_id: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT * FROM exchange_events WHERE exchange_id = $1 ORDER BY id", exchange_id
        )
        return [dict(r) for r in rows]

    # -- matches --------------------------------------------------------------

    async def add_match(self, our: str, their: str, reason: str) -> bool:
        result = await self.pool.execute(
            """INSERT INTO matches (our_proposal, their_proposal, reason) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING""",
            our,
            their,
            reason,
        )
        return bool(result == "INSERT 0 1")

    async def list_matches(self) -> list[Match]:
        rows = await self.pool.fetch(
            "SELECT * FROM matches WHERE NOT dismissed ORDER BY id DESC LIMIT 500"
        )
        return [Match(**dict(r)) for r in rows]

    # -- tokens and rules -------------------------------------------------------

    async def add_token(self, local_actor_id: int, name: str, token_hash: str) -> int:
        value = await self.pool.fetchval(
            """INSERT INTO tokens (local_actor_id, name, token_hash) VALUES ($1, $2, $3)
               RETURNING id""",
            local_actor_id,
            name,
            token_hash,
        )
        return int(value)

    async def actor_for_token(self, token_hash: str) -> int | None:
        value = await self.pool.fetchval(
            """UPDATE tokens SET last_used_at = now()
               WHERE token_hash = $1 AND revoked_at IS NULL RETURNING local_actor_id""",
            token_hash,
        )
        return int(value) if value is not None else None

    async def revoke_token(self, token_id: int) -> bool:
        result = await self.pool.execute(
            "UPDATE tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            token_id,
        )
        return bool(result == "UPDATE 1")

    async def list_tokens(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            """SELECT id, name, created_at, last_used_at, revoked_at FROM tokens ORDER BY id"""
        )
        return [dict(r) for r in rows]

    async def get_rule(self, name: str, default: Any) -> Any:
        value = await self.pool.fetchval("SELECT value FROM rules WHERE name = $1", name)
        return default if value is None else value

    async def set_rule(self, name: str, value: Any) -> None:
        await self.pool.execute(
            """INSERT INTO rules (name, value) VALUES ($1, $2)
               ON CONFLICT (name) DO UPDATE SET value = excluded.value""",
            name,
            value,
        )

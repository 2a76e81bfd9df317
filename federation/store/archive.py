"""SQL of ``coopfed export`` and ``coopfed import``: everything the coop owns, as rows.

``export_archive`` reads, in one repeatable-read transaction, the sections of
an archive (see ``coopfed/cli/data.py`` for the file format): rows as dicts
keyed by column name, local actors named by username instead of by id.
``import_archive`` writes them into an empty database in one transaction;
PostgreSQL parses every value back (``jsonb_populate_record``), so timestamps
and decimals travel as the strings the export wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

LOCAL_ACTOR_COLUMNS = (
    "username",
    "kind",
    "name",
    "summary",
    "avatar_url",
    "manually_approves_followers",
    "discoverable",
    "private_key_pem",
    "public_key_pem",
    "created_at",
    "updated_at",
    "deleted_at",
    "header_url",
    "fields",
    "suspended_at",
    "settings_profile",
)
OBJECT_COLUMNS = (
    "uri",
    "local",
    "type",
    "attributed_to",
    "in_reply_to",
    "visibility",
    "body",
    "published",
    "updated",
    "deleted_at",
    "received_at",
)
OUTBOX_COLUMNS = ("id", "type", "object_id", "body", "listed", "published")
PROPOSAL_COLUMNS = (
    "uri",
    "local",
    "attributed_to",
    "kind",
    "title",
    "details",
    "action",
    "resource",
    "unit",
    "quantity",
    "price",
    "currency",
    "tags",
    "deadline",
    "pledged",
    "received",
    "status",
    "body",
    "published",
    "updated",
)
FOLLOW_COLUMNS = ("remote_actor", "direction", "state", "activity_id", "created_at", "accepted_at")
REMOTE_ACTOR_COLUMNS = (
    "uri",
    "host",
    "type",
    "username",
    "name",
    "inbox",
    "shared_inbox",
    "followers_url",
    "key_id",
    "public_key_pem",
    "document",
    "fetched_at",
    "gone",
)
INTERACTION_COLUMNS = ("activity_id", "type", "actor", "object_uri", "created_at")
EXCHANGE_COLUMNS = (
    "id",
    "offer_id",
    "proposal_uri",
    "proposer",
    "responder",
    "role",
    "state",
    "pledge",
    "quantity",
    "unit",
    "reciprocal_quantity",
    "reciprocal_unit",
    "message",
    "agreement_uri",
    "offer",
    "agreement",
    "receipt",
    "created_at",
    "updated_at",
)
EVENT_COLUMNS = ("event", "from_state", "to_state", "by_actor", "activity_id", "refused", "at")
DOMAIN_BLOCK_COLUMNS = ("domain", "reason", "created_at")
# admin_passwords and member_passwords: scrypt hashes, one row per local actor.
PASSWORD_COLUMNS = ("password_hash", "updated_at")
PASSWORD_TABLES = ("admin_passwords", "member_passwords")
RULE_COLUMNS = ("name", "value")

# A database with any of these rows is in use: an archive is never merged into it.
CONTENT_TABLES = (
    "follows",
    "objects",
    "outbox_activities",
    "proposals",
    "exchanges",
    "inbox_activities",
    "tokens",
)


class ArchiveRefused(Exception):
    """The archive cannot be restored here; the message says why."""


def _columns(names: Sequence[str], prefix: str = "") -> str:
    return ", ".join(f"{prefix}{n}" for n in names)


async def _rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(sql, *args)]


async def _insert(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    by_local_actor: bool = False,
    conflict: str = "",
) -> int:
    """Insert ``rows`` (dicts of column -> JSON value) in order; PostgreSQL parses them.

    ``by_local_actor``: each row names its actor in ``local_actor`` (a username),
    turned into ``local_actor_id`` here.
    """
    if not rows:
        return 0
    if by_local_actor:
        targets = "local_actor_id, " + _columns(columns)
        values = "la.id, " + _columns(columns, "r.")
        join = "JOIN local_actors la ON la.username = e.doc ->> 'local_actor'"
    else:
        targets, values, join = _columns(columns), _columns(columns, "r."), ""
    status = await conn.execute(
        f"""INSERT INTO {table} ({targets})
            SELECT {values}
            FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(doc, n)
            CROSS JOIN LATERAL jsonb_populate_record(NULL::{table}, e.doc) AS r
            {join}
            ORDER BY e.n
            {conflict}""",
        list(rows),
    )
    inserted = int(status.rsplit(" ", 1)[-1])
    if not conflict and inserted != len(rows):
        raise ArchiveRefused(
            f"{table}: {len(rows) - inserted} row(s) name a local actor the archive lacks"
        )
    return inserted


class ArchiveQueries:
    pool: asyncpg.Pool

    async def export_archive(self) -> dict[str, Any]:
        """Every row the node's own actors own, as one consistent snapshot."""
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            local_actors = await _rows(
                conn, f"SELECT {_columns(LOCAL_ACTOR_COLUMNS)} FROM local_actors ORDER BY id"
            )
            follows = await _rows(
                conn,
                f"""SELECT la.username AS local_actor, {_columns(FOLLOW_COLUMNS, "f.")}
                    FROM follows f JOIN local_actors la ON la.id = f.local_actor_id
                    ORDER BY f.id""",
            )
            exchanges = await _rows(
                conn, f"SELECT {_columns(EXCHANGE_COLUMNS)} FROM exchanges ORDER BY id"
            )
            events = await _rows(
                conn,
                f"SELECT exchange_id, {_columns(EVENT_COLUMNS)} FROM exchange_events ORDER BY id",
            )
            by_exchange: dict[int, list[dict[str, Any]]] = {}
            for event in events:
                by_exchange.setdefault(event.pop("exchange_id"), []).append(event)
            for exchange in exchanges:
                exchange["events"] = by_exchange.get(exchange["id"], [])
            return {
                "local_actors": local_actors,
                "objects": await _rows(
                    conn,
                    f"SELECT {_columns(OBJECT_COLUMNS)} FROM objects WHERE local ORDER BY seq",
                ),
                "outbox": await _rows(
                    conn,
                    f"""SELECT la.username AS local_actor, {_columns(OUTBOX_COLUMNS, "o.")}
                        FROM outbox_activities o JOIN local_actors la ON la.id = o.local_actor_id
                        ORDER BY o.seq""",
                ),
                "proposals": await _rows(
                    conn,
                    f"""SELECT {_columns(PROPOSAL_COLUMNS)} FROM proposals WHERE local
                        ORDER BY seq""",
                ),
                "follows": follows,
                # The actors the coop follows, is followed by or trades with, as
                # last fetched: the restored node delivers to them without a fetch.
                "remote_actors": await _rows(
                    conn,
                    f"""SELECT {_columns(REMOTE_ACTOR_COLUMNS)} FROM remote_actors
                        WHERE uri IN (SELECT remote_actor FROM follows)
                           OR uri IN (SELECT proposer FROM exchanges)
                           OR uri IN (SELECT responder FROM exchanges)
                        ORDER BY uri""",
                ),
                "interactions": await _rows(
                    conn,
                    f"""SELECT {_columns(INTERACTION_COLUMNS)} FROM interactions
                        WHERE object_uri IN (SELECT uri FROM objects WHERE local)
                        ORDER BY created_at, activity_id""",
                ),
                "exchanges": exchanges,
                "domain_blocks": await _rows(
                    conn,
                    f"SELECT {_columns(DOMAIN_BLOCK_COLUMNS)} FROM domain_blocks ORDER BY domain",
                ),
                "rules": await _rows(
                    conn, f"SELECT {_columns(RULE_COLUMNS)} FROM rules ORDER BY name"
                ),
                # The restored admin pages and member logins take the same passwords.
                **{
                    table: await _rows(
                        conn,
                        f"""SELECT la.username AS local_actor,
                                   {_columns(PASSWORD_COLUMNS, "p.")}
                            FROM {table} p JOIN local_actors la ON la.id = p.local_actor_id
                            ORDER BY la.id""",
                    )
                    for table in PASSWORD_TABLES
                },
            }

    async def import_archive(
        self,
        sections: Mapping[str, Any],
        *,
        coop_username: str,
        jobs: Sequence[tuple[str, dict[str, Any], datetime | None, int]] = (),
    ) -> dict[str, int]:
        """Restore exported sections into this database, all or nothing.

        The database must hold no content; local actors a fresh start created
        (``coopfed init``) are replaced, but only when the coop there has the
        archive's username.  ``jobs`` (kind, payload, run_at, max_attempts) are
        queued in the same transaction.  Returns the rows restored per section.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE local_actors IN EXCLUSIVE MODE")
            existing = await conn.fetchval(
                "SELECT username FROM local_actors WHERE kind = 'coop' LIMIT 1"
            )
            if existing is not None and existing != coop_username:
                raise ArchiveRefused(
                    f"this database belongs to the coop @{existing}, not @{coop_username}"
                )
            in_use = [
                table
                for table in CONTENT_TABLES
                if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})")
            ]
            if in_use:
                raise ArchiveRefused(
                    "this database is not empty (it has " + ", ".join(in_use) + "): "
                    "restore into a new node's database"
                )
            await conn.execute("DELETE FROM local_actors")
            counts: dict[str, int] = {}
            try:
                counts["local_actors"] = await _insert(
                    conn, "local_actors", LOCAL_ACTOR_COLUMNS, sections["local_actors"]
                )
                counts["remote_actors"] = await _insert(
                    conn,
                    "remote_actors",
                    REMOTE_ACTOR_COLUMNS,
                    sections["remote_actors"],
                    conflict="ON CONFLICT (uri) DO NOTHING",
                )
                counts["objects"] = await _insert(
                    conn, "objects", OBJECT_COLUMNS, sections["objects"]
                )
                counts["outbox"] = await _insert(
                    conn,
                    "outbox_activities",
                    OUTBOX_COLUMNS,
                    sections["outbox"],
                    by_local_actor=True,
                )
                counts["proposals"] = await _insert(
                    conn, "proposals", PROPOSAL_COLUMNS, sections["proposals"]
                )
                counts["follows"] = await _insert(
                    conn, "follows", FOLLOW_COLUMNS, sections["follows"], by_local_actor=True
                )
                counts["interactions"] = await _insert(
                    conn,
                    "interactions",
                    INTERACTION_COLUMNS,
                    sections["interactions"],
                    conflict="ON CONFLICT DO NOTHING",
                )
                exchanges = sections["exchanges"]
                counts["exchanges"] = await _insert(conn, "exchanges", EXCHANGE_COLUMNS, exchanges)
                await conn.execute(
                    """SELECT setval(pg_get_serial_sequence('exchanges', 'id'),
                                     coalesce(max(id), 0) + 1, false) FROM exchanges"""
                )
                events = [
                    {**event, "exchange_id": exchange["id"]}
                    for exchange in exchanges
                    for event in exchange.get("events") or []
                ]
                counts["exchange_events"] = await _insert(
                    conn, "exchange_events", ("exchange_id", *EVENT_COLUMNS), events
                )
                counts["domain_blocks"] = await _insert(
                    conn,
                    "domain_blocks",
                    DOMAIN_BLOCK_COLUMNS,
                    sections["domain_blocks"],
                    conflict="ON CONFLICT DO NOTHING",
                )
                counts["rules"] = await _insert(
                    conn,
                    "rules",
                    RULE_COLUMNS,
                    sections["rules"],
                    conflict="ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                for table in PASSWORD_TABLES:
                    counts[table] = await _insert(
                        conn,
                        table,
                        PASSWORD_COLUMNS,
                        sections.get(table) or [],
                        by_local_actor=True,
                    )
            except KeyError as exc:
                raise ArchiveRefused(f"the archive has no section {exc}") from exc
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                raise ArchiveRefused(f"the archive does not fit the schema: {exc}") from exc
            coop = await conn.fetchval(
                "SELECT username FROM local_actors WHERE kind = 'coop' LIMIT 1"
            )
            if coop != coop_username:
                raise ArchiveRefused(f"the archive holds no coop actor @{coop_username}")
            for kind, payload, run_at, max_attempts in jobs:
                await conn.execute(
                    """INSERT INTO jobs (kind, payload, max_attempts, run_at)
                       VALUES ($1, $2, $3, coalesce($4, now()))""",
                    kind,
                    payload,
                    max_attempts,
                    run_at,
                )
            return counts

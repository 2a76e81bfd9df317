"""The asyncpg pool and the numbered ``.sql`` migrations recorded in the database."""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg
import orjson

log = logging.getLogger(__name__)

MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant will do: it only has to be the same for every coopfed process.
MIGRATION_LOCK = 0x636F6F70  # "coop"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def _encode_json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(
            type_name, encoder=_encode_json, decoder=orjson.loads, schema="pg_catalog"
        )


_HAS_RESET = "reset" in inspect.signature(asyncpg.create_pool).parameters


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a connection to the pool without a reset query.

    asyncpg's default reset sends ``RESET ALL; UNLISTEN *; CLOSE ALL;
    pg_advisory_unlock_all()`` on every release: one more round trip per query.
    coopfed leaves no session state behind (it never uses SET, and undoes its
    LISTENs and its advisory lock itself); asyncpg still rolls back an open
    transaction and drops listener callbacks before calling this.
    """


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 8) -> asyncpg.Pool:
    """A pool whose connections speak jsonb through orjson."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=30,
        # asyncpg < 0.30 has no ``reset``: it keeps its reset query there.
        **({"reset": _keep_session} if _HAS_RESET else {}),
    )
    assert pool is not None
    return pool


def list_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("federation.store").joinpath("sql").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return found


async def apply_migrations(pool: asyncpg.Pool) -> list[Migration]:
    """Apply the migrations this database lacks, each in its own transaction.

    An advisory lock makes concurrent starters (web and worker processes) wait for
    one another instead of racing.  Returns the migrations applied now.
    """
    applied_now: list[Migration] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    int PRIMARY KEY,
                       name       text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in list_migrations():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                log.info("applied migration %04d_%s", migration.version, migration.name)
                applied_now.append(migration)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now


async def applied_versions(pool: asyncpg.Pool) -> list[int]:
    rows = await pool.fetch(
        "SELECT version FROM schema_migrations ORDER BY version"
        if await pool.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        else "SELECT 1 WHERE false"
    )
    return [r[0] for r in rows]

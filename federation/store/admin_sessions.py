"""SQL for the admin pages: the admin password and browser login sessions.

Only hashes are stored: the scrypt hash of the password, and the SHA-256 of a
session cookie.  A session opened with an API token dies with that token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

# NOTIFY channel on which every process of a node hears of changed settings.
CONFIG_CHANNEL = "coopfed_config"


@dataclass(frozen=True, slots=True)
class AdminSession:
    id_hash: str
    local_actor_id: int
    token_id: int | None
    csrf: str
    created_at: datetime
    expires_at: datetime


class AdminSessionQueries:
    pool: asyncpg.Pool

    async def set_admin_password(self, local_actor_id: int, password_hash: str) -> None:
        """Store a new password hash; sessions opened with the old password end."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO admin_passwords (local_actor_id, password_hash) VALUES ($1, $2)
                   ON CONFLICT (local_actor_id) DO UPDATE
                   SET password_hash = excluded.password_hash, updated_at = now()""",
                local_actor_id,
                password_hash,
            )
            await conn.execute(
                "DELETE FROM admin_sessions WHERE local_actor_id = $1 AND token_id IS NULL",
                local_actor_id,
            )

    async def get_admin_password(self, local_actor_id: int) -> str | None:
        value = await self.pool.fetchval(
            "SELECT password_hash FROM admin_passwords WHERE local_actor_id = $1", local_actor_id
        )
        return str(value) if value is not None else None

    async def token_login(self, token_hash: str) -> tuple[int, int] | None:
        """(token id, local actor id) of a live API token, else None."""
        row = await self.pool.fetchrow(
            """UPDATE tokens SET last_used_at = now()
               WHERE token_hash = $1 AND revoked_at IS NULL RETURNING id, local_actor_id""",
            token_hash,
        )
        return (int(row["id"]), int(row["local_actor_id"])) if row else None

    async def create_admin_session(
        self,
        *,
        id_hash: str,
        local_actor_id: int,
        token_id: int | None,
        csrf: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM admin_sessions WHERE expires_at <= $1", now)
            await conn.execute(
                """INSERT INTO admin_sessions
                       (id_hash, local_actor_id, token_id, csrf, created_at, expires_at)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                id_hash,
                local_actor_id,
                token_id,
                csrf,
                now,
                expires_at,
            )

    async def get_admin_session(self, id_hash: str, now: datetime) -> AdminSession | None:
        """A live session: not expired, and its token (if any) not revoked."""
        row = await self.pool.fetchrow(
            """SELECT s.id_hash, s.local_actor_id, s.token_id, s.csrf, s.created_at,
                      s.expires_at
               FROM admin_sessions s
               WHERE s.id_hash = $1 AND s.expires_at > $2
                 AND (s.token_id IS NULL OR EXISTS (
                      SELECT 1 FROM tokens t WHERE t.id = s.token_id AND t.revoked_at IS NULL))""",
            id_hash,
            now,
        )
        return AdminSession(**dict(row)) if row else None

    async def delete_admin_session(self, id_hash: str) -> bool:
        status = await self.pool.execute("DELETE FROM admin_sessions WHERE id_hash = $1", id_hash)
        return bool(status == "DELETE 1")

    async def notify_config(self, what: str) -> None:
        """Tell every process of the node (web, workers) that a setting changed."""
        await self.pool.execute("SELECT pg_notify($1, $2)", CONFIG_CHANNEL, what)

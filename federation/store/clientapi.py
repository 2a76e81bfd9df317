"""SQL for members and the Mastodon client API: passwords, OAuth, account ids.

Timelines, counts and notifications are in ``timelines.py``.  Secrets (client
secrets, codes, tokens) are stored as SHA-256 only; passwords as scrypt hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from federation.store.records import LocalActor


@dataclass(frozen=True, slots=True)
class OAuthApp:
    id: int
    client_id: str
    secret_hash: str
    name: str
    website: str | None
    redirect_uris: list[str]
    scopes: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OAuthCode:
    code_hash: str
    app_id: int
    local_actor_id: int
    redirect_uri: str
    scopes: list[str]
    challenge: str | None
    challenge_method: str | None
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class OAuthToken:
    id: int
    app_id: int
    local_actor_id: int | None
    scopes: list[str]


class ClientApiQueries:
    pool: asyncpg.Pool

    # -- members ----------------------------------------------------------------

    async def list_members(self) -> list[LocalActor]:
        rows = await self.pool.fetch(
            "SELECT * FROM local_actors WHERE kind = 'member' ORDER BY username"
        )
        return [LocalActor(**dict(r)) for r in rows]

    async def set_member_password(self, local_actor_id: int, password_hash: str) -> None:
        """Store a new password; the member's app tokens end with the old one."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO member_passwords (local_actor_id, password_hash) VALUES ($1, $2)
                   ON CONFLICT (local_actor_id) DO UPDATE
                   SET password_hash = excluded.password_hash, updated_at = now()""",
                local_actor_id,
                password_hash,
            )
            await conn.execute(
                """UPDATE oauth_tokens SET revoked_at = now()
                   WHERE local_actor_id = $1 AND revoked_at IS NULL""",
                local_actor_id,
            )

    async def get_member_password(self, local_actor_id: int) -> str | None:
        value = await self.pool.fetchval(
            "SELECT password_hash FROM member_passwords WHERE local_actor_id = $1",
            local_actor_id,
        )
        return str(value) if value is not None else None

    # -- OAuth apps, codes and tokens ----------------------------------------------

    async def create_oauth_app(
        self,
        *,
        client_id: str,
        secret_hash: str,
        name: str,
        website: str | None,
        redirect_uris: Sequence[str],
        scopes: Sequence[str],
    ) -> OAuthApp:
        row = await self.pool.fetchrow(
            """INSERT INTO oauth_apps (client_id, secret_hash, name, website, redirect_uris,
                   scopes) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *""",
            client_id,
            secret_hash,
            name,
            website,
            list(redirect_uris),
            list(scopes),
        )
        return OAuthApp(**dict(row))

    async def get_oauth_app(self, client_id: str) -> OAuthApp | None:
        row = await self.pool.fetchrow("SELECT * FROM oauth_apps WHERE client_id = $1", client_id)
        return OAuthApp(**dict(row)) if row else None

    async def get_oauth_app_by_id(self, app_id: int) -> OAuthApp | None:
        row = await self.pool.fetchrow("SELECT * FROM oauth_apps WHERE id = $1", app_id)
        return OAuthApp(**dict(row)) if row else None

    async def create_oauth_code(
        self,
        *,
        code_hash: str,
        app_id: int,
        local_actor_id: int,
        redirect_uri: str,
        scopes: Sequence[str],
        challenge: str | None,
        challenge_method: str | None,
        expires_at: datetime,
    ) -> None:
        await self.pool.execute(
            """INSERT INTO oauth_codes (code_hash, app_id, local_actor_id, redirect_uri, scopes,
                   challenge, challenge_method, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            code_hash,
            app_id,
            local_actor_id,
            redirect_uri,
            list(scopes),
            challenge,
            challenge_method,
            expires_at,
        )

    async def use_oauth_code(self, code_hash: str, app_id: int, now: datetime) -> OAuthCode | None:
        """Spend a code of this app: once, before it expires; None otherwise."""
        row = await self.pool.fetchrow(
            """UPDATE oauth_codes SET used_at = $3
               WHERE code_hash = $1 AND app_id = $2 AND used_at IS NULL AND expires_at > $3
               RETURNING *""",
            code_hash,
            app_id,
            now,
        )
        return OAuthCode(**dict(row)) if row else None

    async def create_oauth_token(
        self, *, token_hash: str, app_id: int, local_actor_id: int | None, scopes: Sequence[str]
    ) -> int:
        value = await self.pool.fetchval(
            """INSERT INTO oauth_tokens (token_hash, app_id, local_actor_id, scopes)
               VALUES ($1, $2, $3, $4) RETURNING id""",
            token_hash,
            app_id,
            local_actor_id,
            list(scopes),
        )
        return int(value)

    async def find_oauth_token(self, token_hash: str) -> OAuthToken | None:
        """A live token (not revoked); its last use is recorded once a minute at most."""
        row = await self.pool.fetchrow(
            """SELECT id, app_id, local_actor_id, scopes, last_used_at FROM oauth_tokens
               WHERE token_hash = $1 AND revoked_at IS NULL""",
            token_hash,
        )
        if row is None:
            return None
        await self.pool.execute(
            """UPDATE oauth_tokens SET last_used_at = now()
               WHERE id = $1
                 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')""",
            row["id"],
        )
        return OAuthToken(
            id=row["id"],
            app_id=row["app_id"],
            local_actor_id=row["local_actor_id"],
            scopes=list(row["scopes"]),
        )

    async def revoke_oauth_token(self, token_hash: str, app_id: int) -> str:
        """``revoked``, ``unknown`` (or already revoked), or ``other_app``."""
        row = await self.pool.fetchrow(
            "SELECT id, app_id, revoked_at FROM oauth_tokens WHERE token_hash = $1", token_hash
        )
        if row is None or row["revoked_at"] is not None:
            return "unknown"
        if row["app_id"] != app_id:
            return "other_app"
        await self.pool.execute(
            "UPDATE oauth_tokens SET revoked_at = now() WHERE id = $1", row["id"]
        )
        return "revoked"

    # -- account ids -------------------------------------------------------------------

    async def account_ids(self, uris: Sequence[str]) -> dict[str, int]:
        """The numeric id of each actor URI, given one on first sight."""
        wanted = sorted(set(uris))
        if not wanted:
            return {}
        rows = await self.pool.fetch(
            """WITH new AS (
                   INSERT INTO api_accounts (uri) SELECT unnest($1::text[])
                   ON CONFLICT (uri) DO NOTHING RETURNING id, uri)
               SELECT id, uri FROM new
               UNION ALL SELECT id, uri FROM api_accounts WHERE uri = ANY($1::text[])""",
            wanted,
        )
        return {r["uri"]: int(r["id"]) for r in rows}

    async def account_uri(self, account_id: int) -> str | None:
        value = await self.pool.fetchval("SELECT uri FROM api_accounts WHERE id = $1", account_id)
        return str(value) if value is not None else None

"""SQL for members' uploaded media (``media_attachments``).

A row is created by an upload, changed (description, focus) by its owner while
no status has it, and attached once: ``attach_media`` takes the rows for one
status in one statement, so two statuses can never share an upload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class MediaRow:
    id: int
    local_actor_id: int
    file_name: str
    media_type: str
    width: int
    height: int
    preview_name: str | None
    preview_width: int | None
    preview_height: int | None
    blurhash: str
    description: str
    focus_x: float
    focus_y: float
    object_uri: str | None
    position: int
    created_at: datetime


class MediaQueries:
    pool: asyncpg.Pool

    async def create_media(
        self,
        *,
        local_actor_id: int,
        file_name: str,
        media_type: str,
        width: int,
        height: int,
        preview: tuple[str, int, int] | None,
        blurhash: str,
        description: str,
        focus: tuple[float, float],
    ) -> MediaRow:
        preview_name, preview_width, preview_height = preview or (None, None, None)
        row = await self.pool.fetchrow(
            """INSERT INTO media_attachments (local_actor_id, file_name, media_type, width,
                   height, preview_name, preview_width, preview_height, blurhash, description,
                   focus_x, focus_y)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *""",
            local_actor_id,
            file_name,
            media_type,
            width,
            height,
            preview_name,
            preview_width,
            preview_height,
            blurhash,
            description,
            focus[0],
            focus[1],
        )
        return MediaRow(**dict(row))

    async def get_media(self, media_id: int, local_actor_id: int) -> MediaRow | None:
        """The upload ``media_id`` if ``local_actor_id`` owns it."""
        row = await self.pool.fetchrow(
            "SELECT * FROM media_attachments WHERE id = $1 AND local_actor_id = $2",
            media_id,
            local_actor_id,
        )
        return MediaRow(**dict(row)) if row else None

    async def update_media(
        self,
        media_id: int,
        local_actor_id: int,
        *,
        description: str | None,
        focus: tuple[float, float] | None,
    ) -> MediaRow | None:
        """Change an owned upload that no status has taken yet; None otherwise."""
        row = await self.pool.fetchrow(
            """UPDATE media_attachments
               SET description = COALESCE($3, description),
                   focus_x = COALESCE($4, focus_x), focus_y = COALESCE($5, focus_y)
               WHERE id = $1 AND local_actor_id = $2 AND object_uri IS NULL RETURNING *""",
            media_id,
            local_actor_id,
            description,
            focus[0] if focus else None,
            focus[1] if focus else None,
        )
        return MediaRow(**dict(row)) if row else None

    async def attach_media(
        self, media_ids: Sequence[int], local_actor_id: int, object_uri: str
    ) -> list[MediaRow]:
        """Give the owned, unattached uploads ``media_ids`` to ``object_uri``, in that
        order; all or nothing (an empty list when any is missing or taken)."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    """UPDATE media_attachments m SET object_uri = $3, position = w.position
                       FROM unnest($1::bigint[]) WITH ORDINALITY AS w(id, position)
                       WHERE m.id = w.id AND m.local_actor_id = $2 AND m.object_uri IS NULL
                       RETURNING m.*""",
                    list(media_ids),
                    local_actor_id,
                    object_uri,
                )
                if len(rows) != len(set(media_ids)):
                    raise _Incomplete
        except _Incomplete:
            return []
        return sorted((MediaRow(**dict(r)) for r in rows), key=lambda m: m.position)

    async def detach_media(self, object_uri: str) -> None:
        """Free the uploads of a status that could not be published."""
        await self.pool.execute(
            "UPDATE media_attachments SET object_uri = NULL WHERE object_uri = $1", object_uri
        )

    async def media_of_objects(self, uris: Sequence[str]) -> dict[str, list[MediaRow]]:
        rows = await self.pool.fetch(
            """SELECT * FROM media_attachments WHERE object_uri = ANY($1::text[])
               ORDER BY object_uri, position""",
            list(uris),
        )
        found: dict[str, list[MediaRow]] = {}
        for row in rows:
            found.setdefault(row["object_uri"], []).append(MediaRow(**dict(row)))
        return found


class _Incomplete(Exception):
    """Rolls ``attach_media``'s transaction back."""

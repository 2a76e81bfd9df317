"""All SQL of coopfed, behind one ``Store`` over an asyncpg pool.

The queries are grouped by concern in this package's modules; ``Store`` joins
them so the rest of the code holds a single object.
"""

from __future__ import annotations

import asyncpg

from federation.store.activities import ActivityQueries
from federation.store.actors import ActorQueries
from federation.store.admin import AdminQueries
from federation.store.admin_sessions import CONFIG_CHANNEL, AdminSession, AdminSessionQueries
from federation.store.archive import ArchiveQueries, ArchiveRefused
from federation.store.clientapi import ClientApiQueries, OAuthApp, OAuthCode, OAuthToken
from federation.store.market import MarketQueries
from federation.store.media import MediaQueries, MediaRow
from federation.store.operations import OperationsQueries
from federation.store.pool import applied_versions, apply_migrations, create_pool, list_migrations
from federation.store.queue import NOTIFY_CHANNEL, QueueQueries
from federation.store.records import (
    DeliveryRefusal,
    Exchange,
    Follow,
    HostHealth,
    InboxActivity,
    Job,
    LocalActor,
    Match,
    Proposal,
    RemoteActor,
    StoredObject,
)
from federation.store.streams import STREAM_CHANNEL, StreamQueries
from federation.store.timelines import NotificationRow, Paging, StatusCounts, TimelineQueries

__all__ = [
    "CONFIG_CHANNEL",
    "NOTIFY_CHANNEL",
    "STREAM_CHANNEL",
    "AdminSession",
    "ArchiveRefused",
    "DeliveryRefusal",
    "Exchange",
    "Follow",
    "HostHealth",
    "InboxActivity",
    "Job",
    "LocalActor",
    "Match",
    "MediaRow",
    "NotificationRow",
    "OAuthApp",
    "OAuthCode",
    "OAuthToken",
    "Paging",
    "Proposal",
    "RemoteActor",
    "StatusCounts",
    "Store",
    "StoredObject",
    "applied_versions",
    "apply_migrations",
    "create_pool",
    "list_migrations",
]


class Store(
    ActorQueries,
    ActivityQueries,
    QueueQueries,
    AdminQueries,
    MarketQueries,
    AdminSessionQueries,
    OperationsQueries,
    ArchiveQueries,
    ClientApiQueries,
    TimelineQueries,
    MediaQueries,
    StreamQueries,
):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def ping(self) -> bool:
        return bool(await self.pool.fetchval("SELECT true", timeout=2))

    async def clear_all_tables(self) -> None:
        """Empty every table but the migration record (tests use this between cases)."""
        async with self.pool.acquire() as conn:
            names = await conn.fetch(
                """SELECT tablename FROM pg_tables
                   WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"""
            )
            if names:
                tables = ", ".join(f'"{r[0]}"' for r in names)
                await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")

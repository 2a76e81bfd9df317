"""Inbox writes batched by ``InboxWriter``: concurrent accepts share one commit, with
the same answers one at a time would give (stored, duplicate, queue full, refused)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from federation.store import Store
from federation.store.activities import ACCEPTED, DUPLICATE, QUEUE_FULL
from tests.support.nodes import empty_store

ACTOR = "https://remote.example/users/alice"


@pytest.fixture
async def store(pg_admin_dsn: str) -> AsyncIterator[Store]:
    async with empty_store(pg_admin_dsn, "inbox_writer_test") as store:
        yield store


async def accept(store: Store, activity_id: str, *, actor: str = ACTOR, **kw: Any) -> str:
    return await store.accept_inbox_activity(
        activity_id=activity_id,
        actor=actor,
        type="Create",
        body={"id": activity_id, "type": "Create", "actor": actor},
        local_actor_id=None,
        max_attempts=8,
        **kw,
    )


async def count(store: Store, sql: str) -> int:
    return int(await store.pool.fetchval(sql))


async def test_concurrent_accepts_are_stored_once_each_with_one_job(store: Store) -> None:
    # Given 50 activities sent at once, 10 of them twice in the same burst
    ids = [f"https://remote.example/activities/{n}" for n in range(50)]
    burst = ids + ids[:10]

    # When they are all accepted concurrently
    results = await asyncio.gather(*(accept(store, i) for i in burst))

    # Then each id is stored once with one processing job, and the repeats are duplicates
    assert results[10:50] == [ACCEPTED] * 40
    assert [sorted((results[n], results[50 + n])) for n in range(10)] == [
        [ACCEPTED, DUPLICATE]
    ] * 10
    assert await count(store, "SELECT count(*) FROM inbox_activities") == 50
    assert await count(store, "SELECT count(DISTINCT activity_id) FROM inbox_activities") == 50
    assert await count(store, "SELECT count(*) FROM jobs WHERE kind = 'process_inbox'") == 50
    assert (
        await count(
            store,
            """SELECT count(*) FROM jobs j JOIN inbox_activities i
               ON (j.payload ->> 'inbox_id')::bigint = i.id""",
        )
        == 50
    )

    # And a replay sent later is a duplicate too
    assert await accept(store, ids[3]) == DUPLICATE


async def test_queue_cap_applies_per_actor_in_a_batch(store: Store) -> None:
    # Given an actor with 3 unprocessed activities and a cap of 3
    for n in range(3):
        assert await accept(store, f"https://remote.example/a/{n}", max_pending=3) == ACCEPTED

    # When that actor and another one send at once
    other = "https://other.example/users/bob"
    full, fresh, replay = await asyncio.gather(
        accept(store, "https://remote.example/a/9", max_pending=3),
        accept(store, "https://other.example/b/1", actor=other, max_pending=3),
        accept(store, "https://remote.example/a/1", max_pending=3),
    )

    # Then only the capped actor's new activity is refused; a replay is still a duplicate
    assert (full, fresh, replay) == (QUEUE_FULL, ACCEPTED, DUPLICATE)
    assert await count(store, "SELECT count(*) FROM inbox_activities") == 4


async def test_an_activity_the_database_refuses_fails_alone(store: Store) -> None:
    # Given a burst in which one activity id cannot be stored (text with a NUL byte)
    good = [f"https://remote.example/ok/{n}" for n in range(5)]

    # When they are accepted concurrently
    results = await asyncio.gather(
        *(accept(store, i) for i in [*good[:2], "https://remote.example/\x00", *good[2:]]),
        return_exceptions=True,
    )

    # Then that request fails, and every other activity is stored
    assert [type(r).__name__ for r in results].count("str") == 5
    assert isinstance(results[2], asyncpg.PostgresError | ValueError)
    assert [r for r in results if isinstance(r, str)] == [ACCEPTED] * 5
    assert await count(store, "SELECT count(*) FROM inbox_activities") == 5

"""The store on real PostgreSQL: migrations, the job queue, objects."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from federation.store import Store, applied_versions, apply_migrations, create_pool, list_migrations
from federation.store import pool as pool_module
from tests.support.nodes import database_dsn, dsn_for_database, empty_store, eventually

FRESH_DB = "store_fresh"


@pytest.fixture
async def store(pg_admin_dsn: str) -> AsyncIterator[Store]:
    async with empty_store(pg_admin_dsn, "store_test") as store:
        yield store


async def fresh_database(admin_dsn: str) -> str:
    """An empty database, without any migration applied."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {FRESH_DB}")
        await conn.execute(f"CREATE DATABASE {FRESH_DB}")
    finally:
        await conn.close()
    return dsn_for_database(admin_dsn, FRESH_DB)


# -- migrations ----------------------------------------------------------------------


def test_list_migrations_numbering() -> None:
    migrations = list_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "init"
    assert all(m.sql.strip() for m in migrations)
    assert all(m.name.replace("_", "").isalnum() and m.name.islower() for m in migrations)


def test_list_migrations_refuses_gaps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given migrations 1 and 3 (2 is missing), and a file that is not a migration
    sql = tmp_path / "sql"
    sql.mkdir()
    (sql / "0001_init.sql").write_text("SELECT 1;")
    (sql / "0003_more.sql").write_text("SELECT 3;")
    (sql / "README.txt").write_text("not a migration")
    monkeypatch.setattr(pool_module, "resources", types.SimpleNamespace(files=lambda _: tmp_path))
    # Then listing them fails, naming what it found
    with pytest.raises(RuntimeError, match=r"\[1, 3\]"):
        list_migrations()
    # And with the gap filled they come sorted, the stray file ignored
    (sql / "0002_next.sql").write_text("SELECT 2;")
    assert [(m.version, m.name) for m in list_migrations()] == [
        (1, "init"),
        (2, "next"),
        (3, "more"),
    ]


async def test_migrations_recorded_and_reapplying_is_noop(pg_admin_dsn: str) -> None:
    # Given an empty database
    pool = await create_pool(await fresh_database(pg_admin_dsn), max_size=2)
    try:
        assert await applied_versions(pool) == []
        # When migrations are applied
        applied = await apply_migrations(pool)
        # Then all of them ran and are recorded in schema_migrations
        expected = [(m.version, m.name) for m in list_migrations()]
        assert [(m.version, m.name) for m in applied] == expected
        rows = await pool.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == expected
        assert await applied_versions(pool) == [v for v, _ in expected]
        tables = {
            r[0]
            for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert {"local_actors", "follows", "jobs", "failed_jobs", "objects"} <= tables
        # And applying again does nothing
        assert await apply_migrations(pool) == []
        assert await pool.fetchval("SELECT count(*) FROM schema_migrations") == len(expected)
    finally:
        await pool.close()


async def test_concurrent_starters_apply_once(pg_admin_dsn: str) -> None:
    # Given two processes' pools starting on the same empty database at once
    dsn = await fresh_database(pg_admin_dsn)
    pools = [await create_pool(dsn, max_size=1) for _ in range(2)]
    try:
        # When both apply migrations concurrently
        results = await asyncio.gather(*(apply_migrations(p) for p in pools))
        # Then exactly one applied them (the advisory lock serialises), without error
        assert sorted(len(r) for r in results) == [0, len(list_migrations())]
    finally:
        for p in pools:
            await p.close()


async def test_conftest_database_is_migrated(pg_admin_dsn: str) -> None:
    # The helper's databases come migrated; applying again is a no-op
    pool = await create_pool(await database_dsn(pg_admin_dsn, "store_test"), max_size=1)
    try:
        assert await apply_migrations(pool) == []
        assert await applied_versions(pool) == [m.version for m in list_migrations()]
    finally:
        await pool.close()


# -- the queue -----------------------------------------------------------------------


async def test_enqueue_claim_complete(store: Store) -> None:
    # Given a queued job
    job_id = await store.enqueue("deliver", {"inbox": "https://x/inbox", "n": "é"}, max_attempts=3)
    assert await store.queue_depth() == {"deliver": 1}
    # When a worker claims jobs
    jobs = await store.claim_jobs(limit=10, lease_seconds=30)
    # Then it gets that job, attempt 1, payload intact
    assert [(j.id, j.kind, j.payload, j.attempts, j.max_attempts) for j in jobs] == [
        (job_id, "deliver", {"inbox": "https://x/inbox", "n": "é"}, 1, 3)
    ]
    assert jobs[0].last_error is None
    # And while its lease runs nobody else gets it
    assert await store.claim_jobs(limit=10, lease_seconds=30) == []
    # When it completes it is gone
    await store.complete_job(job_id)
    assert await store.queue_depth() == {}
    assert await store.count_failed_jobs() == {}
    assert await store.claim_jobs(limit=10, lease_seconds=30) == []


async def test_claim_respects_limit_kinds_and_run_at(store: Store) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    a = await store.enqueue("deliver", {"n": 1}, max_attempts=1)
    b = await store.enqueue("process_inbox", {"n": 2}, max_attempts=1)
    c = await store.enqueue("deliver", {"n": 3}, max_attempts=1)
    await store.enqueue("deliver", {"n": 4}, max_attempts=1, run_at=later)
    # Only the kinds asked for
    assert [j.id for j in await store.claim_jobs(limit=10, lease_seconds=30, kinds=["x"])] == []
    inbox = await store.claim_jobs(limit=10, lease_seconds=30, kinds=["process_inbox"])
    assert [j.id for j in inbox] == [b]
    # At most `limit`, oldest first; a job due later is not claimed
    assert [j.id for j in await store.claim_jobs(limit=1, lease_seconds=30)] == [a]
    assert [j.id for j in await store.claim_jobs(limit=10, lease_seconds=30)] == [c]
    assert await store.claim_jobs(limit=10, lease_seconds=30) == []
    # The next job due is a leased one, when its 30 s lease runs out...
    due = await store.next_job_due()
    assert due is not None
    assert timedelta(seconds=20) < due - datetime.now(UTC) <= timedelta(seconds=30)
    # ...and once those are done, the one due in an hour
    for job_id in (a, b, c):
        await store.complete_job(job_id)
    assert await store.next_job_due() == later


async def test_retry_makes_job_due_again(store: Store) -> None:
    # Given a claimed job
    job_id = await store.enqueue("deliver", {}, max_attempts=5)
    assert len(await store.claim_jobs(limit=1, lease_seconds=30)) == 1
    # When it is retried with a delay
    await store.retry_job(job_id, delay_seconds=3600, error="HTTP 503")
    # Then it is not due until the delay has passed
    assert await store.claim_jobs(limit=1, lease_seconds=30) == []
    assert await store.queue_depth() == {"deliver": 1}
    # When it is retried at once, it comes back as attempt 2 with its last error
    await store.retry_job(job_id, delay_seconds=0, error="HTTP 502")
    [again] = await store.claim_jobs(limit=1, lease_seconds=30)
    assert (again.id, again.attempts, again.last_error) == (job_id, 2, "HTTP 502")


async def test_expired_lease_is_claimed_again(store: Store) -> None:
    # Given a job claimed by a worker that then died (it never completes it)
    job_id = await store.enqueue("deliver", {}, max_attempts=5)
    [first] = await store.claim_jobs(limit=1, lease_seconds=1.0)
    assert first.attempts == 1
    # Then it is not claimed again while the lease runs
    assert await store.claim_jobs(limit=1, lease_seconds=1.0) == []

    # But once the lease has run out another worker takes it
    async def reclaimed() -> list[int]:
        return [j.attempts for j in await store.claim_jobs(limit=1, lease_seconds=30)]

    assert await eventually(reclaimed, timeout=5, message="lease expiry") == [2]
    assert await store.queue_depth() == {"deliver": 1}
    assert job_id == first.id


async def test_fail_moves_job_to_failed_jobs(store: Store) -> None:
    # Given a claimed job that cannot succeed
    job_id = await store.enqueue("deliver", {"inbox": "https://gone/inbox"}, max_attempts=3)
    await store.claim_jobs(limit=1, lease_seconds=30)
    # When it is failed for good
    await store.fail_job(job_id, error="HTTP 410 " + "x" * 3000)
    # Then it leaves the queue and is kept for the admin, error truncated
    assert await store.queue_depth() == {}
    assert await store.count_failed_jobs() == {"deliver": 1}
    row = await store.pool.fetchrow("SELECT * FROM failed_jobs WHERE id = $1", job_id)
    assert row["kind"] == "deliver"
    assert row["payload"] == {"inbox": "https://gone/inbox"}
    assert row["attempts"] == 1
    assert row["last_error"].startswith("HTTP 410 ")
    assert len(row["last_error"]) == 2000
    # And failing it twice changes nothing
    await store.fail_job(job_id, error="again")
    assert await store.count_failed_jobs() == {"deliver": 1}


async def test_concurrent_claims_never_share_a_job(store: Store, pg_admin_dsn: str) -> None:
    # Given 200 jobs
    assert await store.enqueue_many("deliver", [{"n": n} for n in range(200)], max_attempts=1)
    ids = {r[0] for r in await store.pool.fetch("SELECT id FROM jobs")}
    assert len(ids) == 200
    # And two processes' pools with four claiming tasks each
    dsn = await database_dsn(pg_admin_dsn, "store_test")
    pools = [await create_pool(dsn, min_size=4, max_size=4) for _ in range(2)]
    claimed: list[tuple[int, int]] = []  # (pool, job id)

    async def claimer(index: int, pool: asyncpg.Pool) -> None:
        worker_store = Store(pool)
        for _ in range(200):  # bounded: each round takes at least one job or stops
            jobs = await worker_store.claim_jobs(limit=3, lease_seconds=60)
            if not jobs:
                return
            claimed.extend((index, j.id) for j in jobs)

    try:
        # When all eight claim until nothing is left
        await asyncio.gather(*(claimer(i, p) for i, p in enumerate(pools) for _ in range(4)))
    finally:
        for p in pools:
            await p.close()
    # Then every job was claimed exactly once
    job_ids = [job_id for _, job_id in claimed]
    assert len(job_ids) == 200
    assert set(job_ids) == ids
    attempts = await store.pool.fetch("SELECT DISTINCT attempts FROM jobs")
    assert [r[0] for r in attempts] == [1]


# -- objects ---------------------------------------------------------------------------


async def test_concurrent_saves_share_a_statement_and_keep_each_outcome(store: Store) -> None:
    author = "https://peer.example/users/alice"
    t0 = datetime(2025, 1, 1, tzinfo=UTC)

    def save(n: int, content: str, updated: datetime | None = None) -> Awaitable[str]:
        uri = f"https://peer.example/notes/{n}"
        return store.save_object(
            uri=uri,
            local=False,
            type="Note",
            attributed_to=author,
            in_reply_to=None,
            visibility="public",
            body={"id": uri, "type": "Note", "content": content},
            published=t0,
            updated=updated,
        )

    # Given a stored note 1 and a deleted note 2
    assert await save(1, "v1") == "created"
    assert await save(2, "v1") == "created"
    assert await store.delete_object("https://peer.example/notes/2", author) is True
    # When many saves arrive together: new notes, note 3 twice (then edited), a
    # replay of note 1, the deleted note 2, and one whose text PostgreSQL refuses
    outcomes = await asyncio.gather(
        *(save(n, "new") for n in range(10, 40)),
        save(3, "first"),
        save(3, "edited", t0 + timedelta(hours=1)),
        save(1, "replayed"),
        save(2, "again", t0 + timedelta(days=1)),
        save(4, "nul \u0000 inside"),
        return_exceptions=True,
    )
    # Then each caller gets its own outcome, as if it had run alone
    *new, first, edited, replayed, deleted, refused = outcomes
    assert new == ["created"] * 30
    assert (first, edited, replayed, deleted) == ("created", "updated", "stale", "deleted")
    assert isinstance(refused, asyncpg.DataError)
    third = await store.get_object("https://peer.example/notes/3")
    assert third is not None and third.body["content"] == "edited"
    assert await store.get_object("https://peer.example/notes/4") is None
    assert await store.count_local_posts() == 0


async def test_save_object_outcomes(store: Store) -> None:
    uri = "https://peer.example/notes/1"
    author = "https://peer.example/users/alice"
    t0 = datetime(2025, 1, 1, tzinfo=UTC)

    async def save(content: str, updated: datetime | None, *, by: str = author) -> str:
        return await store.save_object(
            uri=uri,
            local=False,
            type="Note",
            attributed_to=by,
            in_reply_to=None,
            visibility="public",
            body={"id": uri, "type": "Note", "content": content},
            published=t0,
            updated=updated,
        )

    async def content() -> str:
        stored = await store.get_object(uri)
        assert stored is not None
        return str(stored.body["content"])

    # A new URI is created
    assert await save("v1", None) == "created"
    # The same object again, without a newer `updated`, is stale (a replay)
    assert await save("v1 again", None) == "stale"
    assert await content() == "v1"
    # A newer edit updates it
    assert await save("v2", t0 + timedelta(hours=1)) == "updated"
    assert await content() == "v2"
    # An older or equal edit is stale
    assert await save("v0", t0 + timedelta(minutes=30)) == "stale"
    assert await save("v2 again", t0 + timedelta(hours=1)) == "stale"
    # Someone else cannot overwrite it, even with a newer date
    assert await save("hijack", t0 + timedelta(days=1), by="https://evil.example/u") == "stale"
    assert await content() == "v2"
    # Only the author deletes it; afterwards the URI is never re-created
    assert await store.delete_object(uri, "https://evil.example/u") is False
    assert await store.delete_object(uri, author) is True
    assert await store.delete_object(uri, author) is False
    assert await save("v3", t0 + timedelta(days=2)) == "deleted"
    stored = await store.get_object(uri)
    assert stored is not None and stored.deleted_at is not None
    assert stored.body == {"id": uri, "type": "Tombstone", "formerType": "Note"}

"""Real nodes for tests: served in-process on real 127.0.0.1 ports, each on its
own database of the test cluster, and the polling helper every test waits with.

The fixtures that start them (``nodes``, ``node``) are in ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiohttp import web

from coopfed.app import RUNNERS, create_app
from federation.context import NODE, NodeContext
from federation.settings import Settings
from federation.store import Store, apply_migrations, create_pool

T = TypeVar("T")
TEMPLATE_DB = "coopfed_template"


def dsn_for_database(admin_dsn: str, name: str) -> str:
    parts = urlsplit(admin_dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


_created: set[str] = set()


@asynccontextmanager
async def empty_store(admin_dsn: str, name: str) -> AsyncIterator[Store]:
    """A ``Store`` on the migrated database ``name`` with every table emptied."""
    pool = await create_pool(await database_dsn(admin_dsn, name), max_size=4)
    store = Store(pool)
    await store.clear_all_tables()
    try:
        yield store
    finally:
        await pool.close()


async def database_dsn(admin_dsn: str, name: str) -> str:
    """A migrated database ``name`` in the test cluster, created once per run."""
    if name not in _created:
        conn = await asyncpg.connect(admin_dsn)
        try:
            if TEMPLATE_DB not in _created:
                await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
                await conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
                pool = await create_pool(dsn_for_database(admin_dsn, TEMPLATE_DB), max_size=1)
                await apply_migrations(pool)
                await pool.close()
                _created.add(TEMPLATE_DB)
            await conn.execute(f"DROP DATABASE IF EXISTS {name}")
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
        finally:
            await conn.close()
        _created.add(name)
    return dsn_for_database(admin_dsn, name)


async def clean_database(dsn: str) -> None:
    pool = await create_pool(dsn, max_size=1)
    try:
        await Store(pool).clear_all_tables()
    finally:
        await pool.close()


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def node_settings(port: int, data_dir: Path, dsn: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "data_dir": data_dir,
        "database_url": dsn,
        "allow_private_addresses": True,
        "retry_scale": 0.01,
        "job_lease_seconds": 5.0,
        "delivery_timeout_seconds": 5.0,
        "worker_concurrency": 16,
    }
    values.update(overrides)
    return Settings(**values)


class RunningNode:
    """A node served in-process on a real port, with its workers running."""

    def __init__(self, name: str, settings: Settings, dsn: str, sock: socket.socket) -> None:
        self.name = name
        self.settings = settings
        self.dsn = dsn
        self._sock = sock
        self.runner: web.AppRunner | None = None
        self.app: web.Application | None = None

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def actor_url(self) -> str:
        return f"{self.base_url}/users/{self.settings.username}"

    @property
    def handle(self) -> str:
        return f"{self.settings.username}@{self.settings.domain}"

    @property
    def ctx(self) -> NodeContext:
        assert self.app is not None, f"{self.name} is not running"
        return self.app[NODE]

    async def start(self) -> None:
        self.app = create_app(self.settings, dsn=self.dsn)
        self.runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self.runner.setup()
        if self._sock.fileno() == -1:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind(("127.0.0.1", self.settings.port))
        site = web.SockSite(self.runner, self._sock)
        await site.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
            self.app = None

    async def drain(self, timeout: float = 15.0) -> None:
        """Wait until no job is due (queued work has been done or is waiting to retry)."""
        async with asyncio.timeout(timeout):
            while True:
                due = await self.ctx.store.pool.fetchval(
                    "SELECT count(*) FROM jobs WHERE run_at <= now()"
                )
                busy = any(r._running for r in self.app[RUNNERS]) if self.app else False
                if due == 0 and not busy:
                    return
                await asyncio.sleep(0.05)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 15.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}; last value {last!r}")


NodeFactory = Callable[..., Awaitable[RunningNode]]

"""Test fixtures: one real PostgreSQL per run, real nodes on real ports.

- ``pg_admin_dsn``: the cluster (``DATABASE_URL`` when given, else a private
  embedded cluster with fast settings, started once per run).
- ``nodes``: starts coopfed nodes in-process, each on its own database and its
  own 127.0.0.1 port, with workers running; tables are emptied between tests.
- ``node``: one such node.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from coopfed.embedded_pg import EmbeddedPostgres
from tests.support.nodes import (
    NodeFactory,
    RunningNode,
    bound_socket,
    clean_database,
    database_dsn,
    node_settings,
)


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    parent = tempfile.mkdtemp(prefix="coopfed-test-pg-")
    os.chmod(parent, 0o711)  # the server user must traverse it when we are root
    server = EmbeddedPostgres(
        Path(parent) / "data", fast=True, extra_settings={"max_connections": "300"}
    )
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
async def nodes(pg_admin_dsn: str) -> AsyncIterator[NodeFactory]:
    started: list[RunningNode] = []
    tmp = Path(tempfile.mkdtemp(prefix="coopfed-test-nodes-"))

    async def start_node(name: str = "a", /, **overrides: Any) -> RunningNode:
        dsn = await database_dsn(pg_admin_dsn, f"node_{name}")
        await clean_database(dsn)
        sock = bound_socket()
        settings = node_settings(sock.getsockname()[1], tmp / name, dsn, **overrides)
        running = RunningNode(name, settings, dsn, sock)
        await running.start()
        started.append(running)
        return running

    try:
        yield start_node
    finally:
        for running in reversed(started):
            with contextlib.suppress(Exception):
                await running.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
async def node(nodes: NodeFactory) -> RunningNode:
    return await nodes("a")


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session

"""Fixtures of the one-node tests: a remote server shaped like Mastodon."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.fakepeer import FakePeer


@pytest.fixture
async def peer() -> AsyncIterator[FakePeer]:
    server = await FakePeer(style="mastodon").start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def localhost_peer() -> AsyncIterator[FakePeer]:
    """A peer on host ``localhost``: blocking it blocks nothing else of the test."""
    server = await FakePeer(style="mastodon", hostname="localhost").start()
    try:
        yield server
    finally:
        await server.stop()

"""Fixtures of the system tests: Debian's headless Chromium, one per test.

When ``chromium`` is missing, the session installs it once with apt-get (we run
as root in CI).  If that cannot be done the tests fail, saying how to install it:
a browser test that silently skips proves nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.cdp import Browser
from tests.support.systemtools import ensure_command


@pytest.fixture(scope="session")
def chromium() -> str:
    try:
        return ensure_command("chromium", "chromium")
    except LookupError as exc:
        pytest.fail(f"headless Chromium is needed for the browser tests: {exc}")


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    started = await Browser.start(chromium)
    try:
        yield started
    finally:
        await started.close()

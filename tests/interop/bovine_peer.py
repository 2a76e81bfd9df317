"""Run a bovine-herd ActivityPub peer (tests/interop/bovine/peer.py) beside our node.

A helper for interop tests, not a test.  Typical use::

    async with await start_bovine_peer() as peer:
        await peer.follow(our_actor_url)
        accept = await peer.wait_for_activity("Accept")

How bovine gets installed
-------------------------
bovine (PyPI ``bovine``, ``bovine-herd`` and their store and processing
packages, pinned in tests/interop/bovine/requirements.txt) lives in its own
virtualenv, not in the project's: its pins (Quart, tortoise-orm, PyLD 2) are
none of ours.  The venv is made once per requirements file with the running
interpreter (``python -m venv``, then ``pip install -r requirements.txt``)
in ``$COOPFED_INTEROP_CACHE`` or ``~/.cache/coopfed-interop``, in a
subdirectory named by a hash of the requirements, under a file lock (parallel
test processes share it); later runs reuse it.  The peer then runs as
``<venv>/bin/python peer.py`` on 127.0.0.1, with the ActivityStreams and
security contexts from tests/fixtures/contexts (bovine would otherwise download
them).  A failure to install or start raises :class:`BovinePeerError`: a missing
peer is an error, not a skipped test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from tests.interop.fedify_peer import _read_log, _tail, _terminate
from tests.support.venvs import VenvError, cached_venv

BOVINE_DIR = Path(__file__).resolve().parent / "bovine"
CONTEXTS = Path(__file__).resolve().parent.parent / "fixtures" / "contexts"
INSTALL_TIMEOUT = 300.0  # a cold install downloads ~40 wheels
DEFAULT_READY_TIMEOUT = 30.0

JSON = Any


class BovinePeerError(RuntimeError):
    """The bovine peer could not be installed, started or driven."""


def ensure_bovine_installed() -> Path:
    """Make the cached virtualenv once; returns its python.  Blocking."""
    try:
        return cached_venv("bovine", BOVINE_DIR / "requirements.txt", timeout=INSTALL_TIMEOUT)
    except VenvError as e:
        raise BovinePeerError(f"installing the bovine peer failed: {e}") from e


def _spawn(cmd: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
    fd, log_name = tempfile.mkstemp(prefix="bovine-peer-", suffix=".log")
    with os.fdopen(fd, "wb") as log_file:
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    return process, Path(log_name)


class BovinePeer:
    """A running peer.py; its actor is ``actor_url`` (bovine picks the path)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.actor_url = ""
        self._session: aiohttp.ClientSession | None = None
        self._final_log: str | None = None

    async def __aenter__(self) -> BovinePeer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.process.poll() is None:
            await asyncio.to_thread(_terminate, self.process)
        if self._final_log is None:
            self._final_log = _read_log(self.log_path)
            self.log_path.unlink(missing_ok=True)

    def log(self) -> str:
        return self._final_log if self._final_log is not None else _read_log(self.log_path)

    async def _request(self, method: str, path: str, body: JSON = None) -> JSON:
        if self.process.poll() is not None:
            raise BovinePeerError(
                f"the bovine peer exited ({self.process.returncode}):\n{_tail(self.log())}"
            )
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        async with self._session.request(method, self.origin + path, json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                raise BovinePeerError(
                    f"{method} {path} -> {resp.status}: {data}\n{_tail(self.log())}"
                )
            return data

    async def health(self) -> JSON:
        return await self._request("GET", "/control/health")

    async def follow(self, actor_url: str) -> JSON:
        """The peer's actor posts Follow to its own outbox (signed by bovine's client);
        the herd delivers it.  Returns {"status", "location"}."""
        return await self._request("POST", "/control/follow", {"actor": actor_url})

    async def fetch(self, url: str) -> JSON:
        """A GET signed by bovine's client; {"document", "id", "attributed_to"}."""
        return await self._request("POST", "/control/fetch", {"url": url})

    async def received(self) -> list[JSON]:
        """What passed the herd's signature check: {type, id, actor, verified_as,
        object_id, raw, object (bovine's reading of an embedded object)}."""
        result: list[JSON] = await self._request("GET", "/control/received")
        return result

    async def answers(self) -> list[JSON]:
        """Every POST to the herd (inboxes, outbox): {path, status}."""
        result: list[JSON] = await self._request("GET", "/control/answers")
        return result

    async def wait_for_activity(
        self,
        type_: str,
        *,
        where: Callable[[JSON], bool] | None = None,
        within: float = 20.0,
    ) -> JSON:
        deadline = time.monotonic() + within
        while True:
            for item in await self.received():
                if item["type"] == type_ and (where is None or where(item)):
                    return item
            if time.monotonic() >= deadline:
                raise BovinePeerError(
                    f"no {type_} within {within}s; received: "
                    f"{[(i['type'], i['actor']) for i in await self.received()]}; "
                    f"answers: {await self.answers()}\n{_tail(self.log())}"
                )
            await asyncio.sleep(0.1)


async def start_bovine_peer(*, ready_timeout: float = DEFAULT_READY_TIMEOUT) -> BovinePeer:
    """Install (once) and start a bovine-herd peer on a free port of 127.0.0.1."""
    python = await asyncio.to_thread(ensure_bovine_installed)
    cmd = [str(python), str(BOVINE_DIR / "peer.py"), "--port", "0", "--contexts", str(CONTEXTS)]
    process, log_path = await asyncio.to_thread(_spawn, cmd)
    deadline = time.monotonic() + ready_timeout
    ready = re.compile(r"^READY (\d+)$", re.M)
    while True:
        m = ready.search(_read_log(log_path))
        if m:
            peer = BovinePeer(process, int(m.group(1)), log_path)
            break
        if process.poll() is not None or time.monotonic() >= deadline:
            await asyncio.to_thread(_terminate, process)
            raise BovinePeerError(
                f"the bovine peer did not start: {' '.join(cmd)}\n{_tail(_read_log(log_path))}"
            )
        await asyncio.sleep(0.05)
    try:
        peer.actor_url = (await peer.health())["actor"]
    except BaseException:
        with contextlib.suppress(Exception):
            await peer.stop()
        raise
    return peer

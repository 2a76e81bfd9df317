"""The data directory's own files: the node's identity and its run lock.

``<data dir>/node.json`` remembers the identity ``coopfed run`` started with
(handle, origin, address), so that a restart without flags and every other
command (``coopfed follow`` in another terminal) build the same URLs as the
node.  It is written only once a start has succeeded: a failed start changes
nothing.

``<data dir>/node.lock`` is held (``flock``) by the running node for its whole
life, so a second ``coopfed run`` on the same data directory refuses to start
instead of sharing the database and rewriting the identity.  It names the
holder's pid and URL for the error message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from federation.settings import Settings

IDENTITY_FILE = "node.json"
LOCK_FILE = "node.lock"
SAVED = ("host", "port", "origin", "username", "allow_private_addresses")
# What a restart takes from node.json when neither a flag nor the environment gives it.
REMEMBERED = ("host", "port", "origin", "username")


class NodeAlreadyRunning(Exception):
    """Another process holds the data directory's lock."""

    def __init__(self, data_dir: Path, holder: dict[str, Any]) -> None:
        pid = holder.get("pid", "unknown")
        url = holder.get("url", "unknown URL")
        super().__init__(f"a coopfed node already runs on data dir {data_dir} (pid {pid}, {url})")


def save_identity(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    data = {name: getattr(settings, name) for name in SAVED}
    path = settings.data_dir / IDENTITY_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def load_identity(data_dir: Path) -> dict[str, Any]:
    try:
        data = orjson.loads((data_dir / IDENTITY_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return {k: v for k, v in data.items() if k in SAVED} if isinstance(data, dict) else {}


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = orjson.loads(os.pread(fd, 4096, 0))
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def hold_data_dir(data_dir: Path, url: str) -> Iterator[None]:
    """Hold the data directory's lock for the block; NodeAlreadyRunning if taken.

    The lock file is never removed (removing it would let two processes lock
    two different files); the kernel releases the lock when the process ends,
    however it ends.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NodeAlreadyRunning(data_dir, _read_holder(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, orjson.dumps({"pid": os.getpid(), "url": url}), 0)
        yield
    finally:
        os.close(fd)

"""Cached virtualenvs for tools whose pins are none of the project's.

``cached_venv(name, requirements)`` makes ``<cache>/<name>-<hash>`` once per
requirements file and Python version (``python -m venv``, then ``pip install
-r``), under a file lock so that parallel test processes share it, and returns
its python.  The cache is ``$COOPFED_INTEROP_CACHE`` or
``~/.cache/coopfed-interop``.  A failure raises :class:`VenvError` (a missing
tool is an error, not a skipped test).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


class VenvError(RuntimeError):
    """The virtualenv could not be made."""


def cache_root() -> Path:
    env = os.environ.get("COOPFED_INTEROP_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "coopfed-interop"


def _last_lines(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _make(venv: Path, requirements: Path, timeout: float) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [*pip, "--disable-pip-version-check", "-r", str(requirements)],
    ]
    deadline = time.monotonic() + timeout
    for cmd in steps:
        try:
            done = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=max(1.0, deadline - time.monotonic()),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(venv, ignore_errors=True)
            raise VenvError(f"`{' '.join(cmd)}` took more than {timeout:.0f}s") from exc
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise VenvError(
                f"`{' '.join(cmd)}` exited {done.returncode}:\n"
                f"{_last_lines(done.stderr + done.stdout)}"
            )


def cached_venv(name: str, requirements: Path, *, timeout: float) -> Path:
    """The python of the virtualenv ``name`` with ``requirements`` installed.  Blocking."""
    key = hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()[:16]
    root = cache_root()
    venv = root / f"{name}-{key}"
    marker = venv / ".installed"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VenvError(f"cannot create the cache {root}: {exc}") from exc
    with open(root / f"{name}-{key}.lock", "w") as lockfile:
        fcntl.flock(lockfile, fcntl.LOCK_EX)
        try:
            if not marker.exists():
                _make(venv, requirements, timeout)
                marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        finally:
            fcntl.flock(lockfile, fcntl.LOCK_UN)
    return venv / "bin" / "python"

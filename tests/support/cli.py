"""The one way tests run the ``coopfed`` command: a real process, as an admin runs it."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import orjson

from coopfed.state_file import save_identity
from tests.support.nodes import RunningNode, eventually

COOPFED = Path(sys.executable).with_name("coopfed")
# The environment of a cron job or a service unit: a PATH and nothing else.
BARE_ENV = {"PATH": "/usr/bin:/bin"}


class CliResult(NamedTuple):
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return orjson.loads(self.out)


def cli_env() -> dict[str, str]:
    """The environment of an admin's shell: no DATABASE_URL, no COOPFED_* settings."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("COOPFED_") and k != "DATABASE_URL"
    }


async def run_coopfed(
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    traceback_ok: bool = False,
) -> CliResult:
    """Run ``coopfed ARGS`` without blocking the event loop; it must not crash
    (print a traceback) unless ``traceback_ok`` (``-v`` prints one on purpose)."""
    proc = await asyncio.create_subprocess_exec(
        str(COOPFED),
        *args,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env() if env is None else env,
    )
    given = None if stdin is None else stdin.encode()
    out, err = await asyncio.wait_for(proc.communicate(given), timeout=timeout)
    assert proc.returncode is not None
    result = CliResult(proc.returncode, out.decode(), err.decode())
    assert traceback_ok or "Traceback" not in result.err, result.err
    return result


async def coopfed(
    node: RunningNode, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> CliResult:
    """Run ``coopfed ARGS`` against ``node`` (its data directory and database)."""
    save_identity(node.settings)
    node_flags = ("--data-dir", str(node.settings.data_dir), "--database-url", node.dsn)
    return await run_coopfed(*args, *node_flags, stdin=stdin, env=env)


def ok(result: CliResult) -> str:
    """The output of a command that must succeed."""
    code, out, err = result
    assert code == 0, (out, err)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ")[-1].startswith("Z")  # a zombie serves nothing
    except OSError:
        return True


async def wait_healthy(
    http: aiohttp.ClientSession,
    proc: asyncio.subprocess.Process,
    base_url: str,
    output: Callable[[], str],
) -> None:
    """Wait until the `coopfed run` process answers /health; fail at once if it exits."""

    async def healthy() -> bool:
        if proc.returncode is not None:
            raise AssertionError(f"coopfed run exited {proc.returncode}:\n{output()}")
        try:
            async with http.get(
                f"{base_url}/health", timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    await eventually(healthy, timeout=60, interval=0.1, message="coopfed run to be healthy")

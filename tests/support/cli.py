"""The one way tests run the ``coopfed`` command: a real process, as an admin runs it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from coopfed.state_file import save_identity
from tests.support.nodes import RunningNode

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
) -> CliResult:
    """Run ``coopfed ARGS`` without blocking the event loop; it must not crash."""
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
    assert "Traceback" not in result.err, result.err
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

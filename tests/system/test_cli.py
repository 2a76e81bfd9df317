"""The `coopfed` command, as an admin runs it from a fresh clone.

The lifecycle tests run `coopfed run` as a real process on the embedded
PostgreSQL (no DATABASE_URL): it must start, answer, stop on SIGTERM and take
its postgres child down with it, and keep its identity across restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from coopfed.cli.main import build_parser
from federation.store import list_migrations
from tests.support.cli import COOPFED, cli_env, free_port, pid_gone, run_coopfed, wait_healthy

# Commands of issue 2 (run as processes), and a phrase each one's help must say.
HELP_PHRASES = {
    "init": "create the coop's identity",
    "run": "start the node",
    "migrate": "apply database migrations",
    "status": "show the coop, followers, queue",
    "worker": "start one more worker",
    "follow": "follow a coop or person",
    "followers": "list followers",
}


# -- help ----------------------------------------------------------------------------


async def test_help_of_issue_commands() -> None:
    # When `coopfed --help` and `coopfed COMMAND --help` run (concurrently: each is a process)
    commands = [[], *([name] for name in HELP_PHRASES)]
    results = await asyncio.gather(*(run_coopfed(*cmd, "--help") for cmd in commands))
    # Then each exits 0 and says what the command does
    top_status, top_out, _ = results[0]
    assert top_status == 0
    assert "coopfed" in top_out and "ActivityPub" in top_out
    for name in HELP_PHRASES:
        assert name in top_out
    for (name, phrase), (status, out, err) in zip(HELP_PHRASES.items(), results[1:], strict=True):
        assert status == 0, (name, err)
        assert f"usage: coopfed {name}" in out
        assert phrase in " ".join(out.split()), (name, out)


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    # Every subcommand (checked in-process: dozens of processes would be slow)
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    choices: dict[str, argparse.ArgumentParser] = sub.choices
    assert set(HELP_PHRASES) <= set(choices)
    for name, command in choices.items():
        assert command.description, f"{name} has no description"
        with pytest.raises(SystemExit) as exited:
            parser.parse_args([name, "--help"])
        assert exited.value.code == 0
        out = " ".join(capsys.readouterr().out.split())
        assert " ".join(command.description.split()) in out, name


async def test_bad_setting_exits_2() -> None:
    status, _, err = await run_coopfed("run", "--port", "0")
    assert status == 2
    assert "invalid setting port" in err
    status, _, err = await run_coopfed("run", "--origin", "ftp://coop.example")
    assert status == 2
    assert "origin" in err


# -- the lifecycle on the embedded database ------------------------------------------------


class CliNode:
    """`coopfed run --data-dir DIR --port P` as a child process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = root / "run.log"
        self.proc: asyncio.subprocess.Process | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    async def start(self, http: aiohttp.ClientSession) -> None:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *(str(COOPFED), "run", "--data-dir", str(self.data_dir), "--port", str(self.port)),
                env=cli_env(),
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

        await wait_healthy(http, self.proc, self.base_url, self.output)

    async def stop(self) -> int:
        """SIGTERM, as systemd or docker stop sends it; the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            code = await self.proc.wait()
        self.proc = None
        return code

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture(scope="module")
async def cli_node(http: aiohttp.ClientSession) -> AsyncIterator[CliNode]:
    # Not pytest's tmp_path: under root it is 0700 and the postgres user must traverse it.
    root = Path(tempfile.mkdtemp(prefix="coopfed-cli-"))
    os.chmod(root, 0o711)
    node = CliNode(root)
    try:
        await node.start(http)
        yield node
    finally:
        await node.kill()
        pid = node.postmaster_pid()
        if pid is not None and not pid_gone(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
        shutil.rmtree(root, ignore_errors=True)


async def fetch_json(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url, headers={"Accept": "application/activity+json"}) as response:
        assert response.status == 200, url
        data: dict[str, Any] = await response.json(content_type=None)
        return data


async def test_run_serves_health_and_webfinger(
    cli_node: CliNode, http: aiohttp.ClientSession
) -> None:
    # Given `coopfed run` on the embedded database of a fresh data directory
    assert (cli_node.data_dir / "postgres" / "PG_VERSION").exists()
    assert cli_node.postmaster_pid() is not None
    assert f"@coop@127.0.0.1:{cli_node.port} is up at {cli_node.base_url}" in cli_node.output()
    # Then it is healthy and fingerable, and its actor loops back
    async with http.get(f"{cli_node.base_url}/health") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
    async with http.get(
        f"{cli_node.base_url}/.well-known/webfinger",
        params={"resource": f"acct:coop@127.0.0.1:{cli_node.port}"},
    ) as response:
        assert response.status == 200
        assert response.content_type == "application/jrd+json"
        jrd = await response.json(content_type=None)
    [self_link] = [link for link in jrd["links"] if link["rel"] == "self"]
    assert self_link["href"] == f"{cli_node.base_url}/users/coop"
    actor = await fetch_json(http, self_link["href"])
    assert actor["id"] == self_link["href"]
    assert actor["type"] == "Organization"


async def test_status_json_while_running(cli_node: CliNode) -> None:
    # When the admin asks for the status in another terminal
    status, out, err = await run_coopfed("status", "--data-dir", str(cli_node.data_dir), "--json")
    # Then it attaches to the running node's database and reports the coop and the queue
    assert status == 0, err
    report = orjson.loads(out)
    assert report["coop"] == f"@coop@127.0.0.1:{cli_node.port}"
    assert report["actor"] == f"{cli_node.base_url}/users/coop"
    assert report["followers"] == 0
    assert report["following"] == 0
    assert isinstance(report["queue"], dict)
    assert report["failed_jobs"] == {}


async def test_migrate_prints_version(cli_node: CliNode) -> None:
    status, out, err = await run_coopfed("migrate", "--data-dir", str(cli_node.data_dir))
    assert status == 0, err
    latest = list_migrations()[-1].version
    assert out.strip() == f"applied 0 migration(s); database at version {latest}"


async def test_sigterm_stops_cleanly_and_restart_keeps_identity(
    cli_node: CliNode, http: aiohttp.ClientSession
) -> None:
    # Given the running node's key and its postgres child
    key = (await fetch_json(http, f"{cli_node.base_url}/users/coop"))["publicKey"]
    postmaster = cli_node.postmaster_pid()
    assert postmaster is not None and not pid_gone(postmaster)
    # When it receives SIGTERM
    started = time.monotonic()
    code = await cli_node.stop()
    # Then it exits 0 promptly, and its postgres is gone with it
    assert code == 0, cli_node.output()
    assert time.monotonic() - started < 15
    assert pid_gone(postmaster)
    assert not (cli_node.data_dir / "postgres" / "postmaster.pid").exists()
    # When it starts again on the same data directory
    await cli_node.start(http)
    # Then it is the same coop, with the same key
    again = await fetch_json(http, f"{cli_node.base_url}/users/coop")
    assert again["publicKey"] == key
    assert cli_node.postmaster_pid() not in (None, postmaster)
    # And a second SIGTERM stops it cleanly too
    second = cli_node.postmaster_pid()
    assert second is not None
    assert await cli_node.stop() == 0
    assert pid_gone(second)


def test_a_command_on_a_directory_without_a_node_creates_nothing(tmp_path: Path) -> None:
    # Given a data directory where no node ever ran (a typo in --data-dir, say)
    empty = tmp_path / "not-a-node"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    # When the admin runs a command on it
    import subprocess

    done = subprocess.run(
        [str(COOPFED), "need", "Rye", "--data-dir", str(empty)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it refuses, says what to do, and no new coop (no database, no keys) appears
    assert done.returncode == 2
    assert f"no coopfed node in {empty}" in done.stderr
    assert "coopfed run --data-dir" in done.stderr
    assert not empty.exists()

"""Ordinary admin mistakes, made with the real `coopfed` process on the embedded database.

Interrupting the first start, starting twice, restarting with other flags,
repeating a command, renaming the coop: none of it may break the data or the
command line, and every refusal is one clear line, not a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from coopfed.embedded_pg import running_dsn
from tests.support.cli import COOPFED, cli_env, free_port, pid_gone, run_coopfed, wait_healthy
from tests.support.nodes import eventually


def scratch_root() -> Path:
    # Not pytest's tmp_path: under root it is 0700 and the postgres user must traverse it.
    root = Path(tempfile.mkdtemp(prefix="coopfed-mistakes-"))
    os.chmod(root, 0o711)
    return root


def one_line(err: str) -> str:
    """The refusal, asserting it is a single line with no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


class Node:
    """`coopfed run` as a child process in its own session (as a terminal runs it)."""

    def __init__(self, data_dir: Path, *args: str, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.args = list(args)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"{data_dir.name}.run.log"
        self.proc: asyncio.subprocess.Process | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def spawn(
        self, *args: str, env: dict[str, str] | None = None, bare: bool = False
    ) -> None:
        """Start ``coopfed run --data-dir D ARGS`` (the node's args unless given or ``bare``)."""
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                COOPFED,
                "run",
                "--data-dir",
                str(self.data_dir),
                *(args if args or bare else ("--port", str(self.port), *self.args)),
                env=env or cli_env(),
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                # As in a terminal: a shell without job control starts background
                # commands with SIGINT ignored, which Python would then keep.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )

    async def start(self, http: aiohttp.ClientSession, *args: str, **kw: Any) -> None:
        await self.spawn(*args, **kw)

        assert self.proc is not None
        await wait_healthy(http, self.proc, self.base_url, self.output)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                await self.proc.wait()
        self.proc = None

    async def cli(self, *args: str) -> tuple[int, str, str]:
        return await run_coopfed(*args, "--data-dir", str(self.data_dir))

    async def actor(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(
            f"{self.base_url}/users/coop" if "--username" not in self.args else self.actor_url,
            headers={"Accept": "application/activity+json"},
        ) as response:
            assert response.status == 200
            data: dict[str, Any] = await response.json(content_type=None)
            return data

    @property
    def actor_url(self) -> str:
        name = self.args[self.args.index("--username") + 1] if "--username" in self.args else "coop"
        return f"{self.base_url}/users/{name}"

    async def query(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        dsn = running_dsn(self.data_dir / "postgres")
        assert dsn is not None, "the node's postgres is not running"
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql, *params))
        finally:
            await conn.close()


def stop_strays(data_dir: Path) -> None:
    """Leave no postgres behind when a test fails half-way."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        if not pid_gone(pid):
            os.kill(pid, signal.SIGQUIT)


@pytest.fixture
def root() -> Iterator[Path]:
    path = scratch_root()
    try:
        yield path
    finally:
        stop_strays(path / "data")
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def running(root: Path, http: aiohttp.ClientSession) -> AsyncIterator[Node]:
    node = Node(root / "data")
    await node.start(http)
    try:
        yield node
    finally:
        await node.stop()


# -- 1. an interrupted first start -----------------------------------------------------


async def _wait_for(path: Path, proc: asyncio.subprocess.Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(path.exists):
        assert proc.returncode is None, "coopfed run ended before the moment to interrupt it"
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.002)


INTERRUPTIONS = {
    # name: (what to wait for, signals to the terminal's process group or the node alone)
    "ctrl-c during initdb": ("postgres.initdb", [("group", signal.SIGINT)]),
    "ctrl-c twice during initdb": (
        "postgres.initdb",
        [("group", signal.SIGINT), ("group", signal.SIGINT)],
    ),
    "killed during initdb": ("postgres.initdb", [("node", signal.SIGKILL)]),
    "ctrl-c at 0.5 s": (0.5, [("group", signal.SIGINT)]),
    "killed once the cluster is in place": ("postgres/PG_VERSION", [("node", signal.SIGKILL)]),
}


@pytest.mark.parametrize("moment", list(INTERRUPTIONS))
async def test_an_interrupted_first_start_is_followed_by_a_normal_start(
    moment: str, root: Path, http: aiohttp.ClientSession
) -> None:
    node = Node(root / "data")
    wait_for, signals = INTERRUPTIONS[moment]
    # Given a first `coopfed run` on a fresh data directory
    await node.spawn()
    assert node.proc is not None
    # When it is interrupted at that moment
    if isinstance(wait_for, float):
        await asyncio.sleep(wait_for)
    else:
        await _wait_for(node.data_dir / wait_for, node.proc)
    for target, sig in signals:
        with contextlib.suppress(ProcessLookupError):
            if target == "group":
                os.killpg(node.proc.pid, sig)
            else:
                os.kill(node.proc.pid, sig)
        await asyncio.sleep(0.05)
    async with asyncio.timeout(30):
        await node.proc.wait()
    # Then the next start is a normal one: healthy, and the CLI works on it
    await node.start(http)
    try:
        code, out, err = await node.cli("status", "--json")
        assert code == 0, err
        assert orjson.loads(out)["actor"] == node.actor_url
        assert not (root / "data" / "postgres.initdb").exists()
    finally:
        await node.stop()


# -- 2. one node per data directory -------------------------------------------------------


async def test_a_second_node_on_the_same_data_dir_is_refused(running: Node) -> None:
    identity = (running.data_dir / "node.json").read_bytes()
    other = free_port()
    # When the admin starts a second node on the same data directory, on another port
    code, out, err = await run_coopfed(
        "run", "--data-dir", str(running.data_dir), "--port", str(other), timeout=30
    )
    # Then it exits at once, naming the data dir and the running node's pid and URL
    assert code != 0
    line = one_line(err)
    assert str(running.data_dir) in line
    assert running.proc is not None and f"pid {running.proc.pid}" in line
    assert running.base_url in line
    # And it changed nothing: the identity, the running node, nobody on the other port
    assert (running.data_dir / "node.json").read_bytes() == identity
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", other), timeout=1):
        pass
    # While CLI commands still work beside the running node
    code, out, err = await running.cli("status", "--json")
    assert code == 0, err
    assert orjson.loads(out)["actor"] == f"{running.base_url}/users/coop"


# -- 3. a failed start changes nothing; the identity is remembered ------------------------


async def test_renaming_the_coop_is_refused_and_a_restart_remembers_the_identity(
    running: Node, http: aiohttp.ClientSession
) -> None:
    key = (await running.actor(http))["publicKey"]
    await running.stop()
    identity = (running.data_dir / "node.json").read_bytes()
    # When the admin restarts it with another handle
    code, _, err = await run_coopfed(
        "run", "--data-dir", str(running.data_dir), "--username", "bakery"
    )
    # Then it is refused in one line, and the state file still names the coop
    assert code == 1
    line = one_line(err)
    assert "@coop" in line and "cannot become @bakery" in line
    assert (running.data_dir / "node.json").read_bytes() == identity
    code, _, err = await running.cli("status", "--json")
    assert code == 0, err
    # When the admin restarts it with no flags at all
    await running.start(http, bare=True)
    # Then it comes back on its remembered address, the same coop with the same key
    assert (await running.actor(http))["publicKey"] == key


async def test_moving_the_coop_to_another_address_is_refused(running: Node) -> None:
    await running.stop()
    code, _, err = await run_coopfed("run", "--data-dir", str(running.data_dir), "--port", "1")
    assert code == 1
    line = one_line(err)
    assert running.base_url in line and "http://127.0.0.1:1" in line


# -- 4. errors are one clear line ---------------------------------------------------------


async def test_a_port_in_use_is_one_line_and_creates_nothing(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await run_coopfed(
            "run", "--data-dir", str(root / "new"), "--port", str(port)
        )
    assert code == 1
    assert f"port {port} on 127.0.0.1 is in use" in one_line(err)
    assert not (root / "new").exists()


async def test_command_errors_are_one_line(running: Node, root: Path) -> None:
    # A password asked with no terminal to type it in
    for args in (["password"], ["member", "add", "maria"]):
        proc = await asyncio.create_subprocess_exec(
            *(COOPFED, *args, "--data-dir", str(running.data_dir)),
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            _, err_bytes = await proc.communicate()
        assert proc.returncode == 1, err_bytes
        assert "--password-stdin" in one_line(err_bytes.decode())
    # A loopback target, which this node (no --allow-private-addresses) refuses
    code, _, err = await running.cli("follow", f"coop@127.0.0.1:{free_port()}")
    assert code == 1
    assert "--allow-private-addresses" in one_line(err)
    # Answering our own proposal
    code, url, err = await running.cli("need", "Rye grain", "--quantity", "5", "--price", "10")
    assert code == 0, err
    code, _, err = await running.cli("respond", url.strip(), "--quantity", "1")
    assert code == 1
    assert "our own proposal" in one_line(err)
    # An unexpected failure: one line, and the traceback with -v
    not_a_dir = root / "file"
    not_a_dir.write_text("")
    port = str(free_port())
    code, _, err = await run_coopfed("run", "--data-dir", str(not_a_dir / "data"), "--port", port)
    assert code == 1
    assert one_line(err.replace("coopfed: (run with -v to see the traceback)", ""))
    code, _, err = await run_coopfed(
        "-v", "run", "--data-dir", str(not_a_dir / "data"), "--port", port, traceback_ok=True
    )
    assert code == 1 and "Traceback" in err


async def test_price_negotiable_as_the_readme_says(running: Node) -> None:
    code, url, err = await running.cli(
        "offer", "Bread", "--quantity", "20", "--price", "negotiable"
    )
    assert code == 0, err
    code, _, err = await running.cli("update", url.strip(), "--price", "60")
    assert code == 0, err
    code, _, err = await running.cli("update", url.strip(), "--price", "negotiable")
    assert code == 0, err
    [row] = await running.query("SELECT price FROM proposals WHERE uri = $1", url.strip())
    assert row["price"] is None


# -- 8. the first page ------------------------------------------------------------------


async def test_the_first_page_and_the_first_start_console(
    running: Node, http: aiohttp.ClientSession
) -> None:
    # The console of the first start says where to go and how to set the password
    output = running.output()
    assert f"public page: {running.base_url}/" in output
    assert f"admin pages: {running.base_url}/admin" in output
    assert "coopfed password" in output
    # A browser opening / gets the coop's page: handle, board, how to follow, the admin link
    async with http.get(f"{running.base_url}/", headers={"Accept": "text/html"}) as page:
        assert page.status == 200
        assert page.content_type == "text/html"
        text = await page.text()
    assert f"@coop@127.0.0.1:{running.port}" in text
    assert "Follow this coop" in text and "Offers" in text
    assert f'href="{running.base_url}/admin"' in text
    # An ActivityPub client gets what it got before
    async with http.get(
        f"{running.base_url}/", headers={"Accept": "application/activity+json"}
    ) as answer:
        assert answer.status == 404
        assert (await answer.json())["error"] == "not found"


# -- 5-7. repeated commands, boolean settings, profile changes between two nodes ----------


@pytest.fixture
async def two(root: Path, http: aiohttp.ClientSession) -> AsyncIterator[tuple[Node, Node]]:
    mill = Node(root / "mill", "--allow-private-addresses")
    bakery = Node(
        root / "bakery",
        "--allow-private-addresses",
        "--username",
        "bakery",
        "--manually-approves-followers",
    )
    try:
        await asyncio.gather(mill.start(http), bakery.start(http))
        yield mill, bakery
    finally:
        await asyncio.gather(mill.stop(), bakery.stop())
        stop_strays(mill.data_dir)
        stop_strays(bakery.data_dir)


async def follows(node: Node, command: str, *flags: str) -> list[str]:
    code, out, err = await node.cli(command, "--json", *flags)
    assert code == 0, err
    return [item["actor"] for item in orjson.loads(out)]


async def test_repeated_commands_exit_0_and_say_so(two: tuple[Node, Node]) -> None:
    mill, bakery = two
    handle = f"bakery@127.0.0.1:{bakery.port}"
    # The mill asks to follow the bakery, twice
    code, out, err = await mill.cli("follow", handle)
    assert code == 0, err
    code, out, err = await mill.cli("follow", handle)
    assert code == 0, err
    assert "already asked to follow" in out and "nothing to do" in out
    # The bakery approves the request, twice
    await eventually(
        lambda: _has(bakery, "followers", mill.actor_url, "--pending"), message="request arrives"
    )
    for expected in ("approved", "already follows"):
        code, out, err = await bakery.cli("approve", mill.actor_url)
        assert code == 0, err
        assert expected in out
    await eventually(lambda: _has(mill, "following", bakery.actor_url), message="accepted")
    code, out, err = await mill.cli("follow", handle)
    assert code == 0 and "we already follow" in out, err
    # The mill unfollows, twice; the bakery then rejects it, twice
    for expected in ("unfollowed", "we do not follow"):
        code, out, err = await mill.cli("unfollow", bakery.actor_url)
        assert code == 0, err
        assert expected in out
    await eventually(
        lambda: _lacks(bakery, "followers", mill.actor_url), message="the Undo arrives"
    )
    for _ in range(2):
        code, out, err = await bakery.cli("reject", mill.actor_url)
        assert code == 0, err
    # Blocks were already idempotent
    for expected in ("blocked spam.example", "already blocked"):
        code, out, err = await mill.cli("block", "spam.example")
        assert code == 0 and expected in out, err


async def _has(node: Node, command: str, actor: str, *flags: str) -> bool:
    return actor in await follows(node, command, *flags)


async def _lacks(node: Node, command: str, actor: str) -> bool:
    return actor not in await follows(node, command)


async def test_boolean_settings_switch_off_and_profile_changes_reach_followers(
    two: tuple[Node, Node], http: aiohttp.ClientSession
) -> None:
    mill, bakery = two
    assert (await bakery.actor(http))["manuallyApprovesFollowers"] is True
    # The mill follows the bakery (approved), so it receives the bakery's profile changes
    assert (await mill.cli("follow", bakery.actor_url))[0] == 0
    await eventually(
        lambda: _has(bakery, "followers", mill.actor_url, "--pending"), message="request"
    )
    assert (await bakery.cli("approve", mill.actor_url))[0] == 0
    await eventually(lambda: _has(mill, "following", bakery.actor_url), message="accepted")

    async def restart(*args: str, **env: str) -> bool:
        await bakery.stop()
        # Only the handle and the address are remembered; the rest is as given now.
        await bakery.start(http, "--allow-private-addresses", *args, env=cli_env() | env)
        return bool((await bakery.actor(http))["manuallyApprovesFollowers"])

    # A restart without the flag (nor --username, nor --port): manual approval is off
    assert await restart() is False
    assert await restart(COOPFED_MANUALLY_APPROVES_FOLLOWERS="1") is True
    assert (
        await restart("--no-manually-approves-followers", COOPFED_MANUALLY_APPROVES_FOLLOWERS="1")
        is False
    )
    assert await restart(COOPFED_MANUALLY_APPROVES_FOLLOWERS="false") is False
    # Each change of manual approval was sent to the follower as an Update of the actor
    updates_before = await bakery.query(
        "SELECT count(*) AS n FROM outbox_activities WHERE type = 'Update'"
    )
    # When the admin restarts it with a new name and summary
    await restart("--name", "Bakery Two", "--summary", "Bread, since 1921")
    # Then one Update carries both, and the follower's node shows the new name
    updates = await bakery.query(
        "SELECT body FROM outbox_activities WHERE type = 'Update' ORDER BY published DESC"
    )
    assert len(updates) == updates_before[0]["n"] + 1
    sent = (
        orjson.loads(updates[0]["body"])
        if isinstance(updates[0]["body"], str)
        else updates[0]["body"]
    )
    assert sent["object"]["name"] == "Bakery Two" and "since 1921" in sent["object"]["summary"]

    async def mill_sees_new_name() -> bool:
        rows = await mill.query("SELECT name FROM remote_actors WHERE uri = $1", bakery.actor_url)
        return bool(rows) and rows[0]["name"] == "Bakery Two"

    await eventually(mill_sees_new_name, timeout=30, message="the follower sees the new name")

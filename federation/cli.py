"""``coopfed``: run a node and administer it from the command line.

Every setting of ``coopfed run`` is a flag and a ``COOPFED_*`` variable.  The
other commands act on the node whose data directory (``--data-dir``) or
``DATABASE_URL`` they are given: they read the identity ``coopfed run`` saved
there, attach to its database and queue work that the node's workers send.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from federation.database import database_for
from federation.embedded_pg import PostgresNotFound, PostgresStartError
from federation.settings import ENV_NAMES, Settings, SettingsError, load_settings
from federation.state_file import (
    IDENTITY_FILE,
    REMEMBERED,
    NodeAlreadyRunning,
    hold_data_dir,
    load_identity,
    save_identity,
)

Command = Callable[[argparse.Namespace, Settings], int]

FLAG_HELP: dict[str, str] = {
    "host": "address to bind (default 127.0.0.1)",
    "port": "port to listen on (default 8080)",
    "origin": "public base URL, e.g. https://coop.example (default http://HOST:PORT)",
    "data_dir": "directory for keys, the embedded database and logs (default ./data)",
    "username": "the coop's handle: @USERNAME@domain (default coop); never changes later",
    "name": "the coop's display name",
    "summary": "a short description of the coop (plain text)",
    "avatar_url": "URL of the coop's avatar image",
    "allow_private_addresses": "allow fetches and deliveries to loopback and private "
    "networks (local development and tests only)",
    "database_url": "PostgreSQL URL; without it the node runs its own private cluster",
    "manually_approves_followers": "new followers wait for `coopfed approve`",
    "workers": "in-process worker tasks (default 1)",
    "worker_concurrency": "jobs each worker runs at once (default 32)",
    "job_lease_seconds": "seconds a claimed job stays locked (default 60)",
    "delivery_timeout_seconds": "timeout of one delivery or fetch (default 20)",
    "max_delivery_attempts": "attempts before a delivery is given up (default 16, ~2 days)",
    "max_inbox_attempts": "attempts to process a received activity (default 8)",
    "retry_scale": "multiplies every retry delay (default 1.0)",
    "unavailable_after_days": "failing days before a host is skipped (default 7)",
    "c2s_rate": "client API requests a second per token (default 10)",
    "c2s_burst": "client API burst per token (default 60)",
    "max_pending_per_actor": "unprocessed activities one remote actor may queue (default 1000)",
    "log_format": "log lines as `text` or `json` (one JSON object a line; default text)",
}
NODE_FLAGS = ("data_dir", "database_url")


def _add_settings(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    for name in names:
        var, kind = ENV_NAMES[name]
        flag = "--" + name.replace("_", "-")
        help_text = f"{FLAG_HELP.get(name, name)} [env {var}]"
        if kind is bool:
            parser.add_argument(
                flag,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=help_text)


def resolve_settings(args: argparse.Namespace, *, for_run: bool) -> Settings:
    """Flags over environment over what the data directory remembers over defaults.

    Other commands act on the node that runs in this data directory, so they
    take all of its saved identity; ``run`` and ``init`` take the remembered
    handle, origin and address unless a flag or a variable gives them.
    """
    flags = {name: getattr(args, name, None) for name in ENV_NAMES}
    settings = load_settings(flags)
    saved = load_identity(settings.data_dir)
    if not saved:
        return settings
    given = {k for k, v in flags.items() if v is not None}
    given |= {k for k, (var, _) in ENV_NAMES.items() if os.environ.get(var)}
    names = REMEMBERED if for_run else tuple(saved)
    remembered = {k: saved[k] for k in names if k in saved and k not in given and k in ENV_NAMES}
    return settings.with_overrides(**remembered)


def check_identity(settings: Settings) -> None:
    """Refuse a start that would give an existing coop another handle or address."""
    saved = load_identity(settings.data_dir)
    if saved.get("username") not in (None, settings.username):
        raise StartRefused(
            f"data dir {settings.data_dir} belongs to the coop @{saved['username']}; "
            f"it cannot become @{settings.username} (a coop's handle never changes: "
            "peers know it by its URL). Start without --username, or use another --data-dir"
        )
    before = Settings(
        host=saved.get("host", settings.host),
        port=int(saved.get("port", settings.port)),
        origin=saved.get("origin", settings.origin),
        username=settings.username,
    ).base_url
    if saved and before != settings.base_url:
        raise StartRefused(
            f"data dir {settings.data_dir} belongs to the coop at {before}; it cannot move "
            f"to {settings.base_url} (its actor URLs would change under its followers). "
            f"Start it at {before}, or give --origin {before} to serve it from another port"
        )


class StartRefused(Exception):
    """The node cannot start as asked; the message says why and what to do."""


def check_port_free(host: str, port: int) -> None:
    """Fail before anything is created when the address is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartRefused(f"cannot listen on {host}: {exc.strerror}") from exc
    for family, _, _, _, address in infos[:1]:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartRefused(
                    f"port {port} on {host} is in use (another node or program); "
                    "choose another with --port"
                ) from exc
            raise StartRefused(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


# Commands that create a node's data rather than act on an existing node.
CREATES_A_NODE = frozenset({"import"})


def needs_a_node(args: argparse.Namespace, settings: Settings) -> bool:
    return not args.for_run and args.command not in CREATES_A_NODE


def has_node(settings: Settings) -> bool:
    """A node lives in the data directory, or the settings name its database.

    Without this, a command given the wrong --data-dir would quietly create a
    new coop (with new keys) there instead of acting on the real one.
    """
    return bool(settings.database_url) or (settings.data_dir / IDENTITY_FILE).exists()


def run_async(
    settings: Settings, action: Callable[[Any], Awaitable[int]], *, apply_profile: bool = False
) -> int:
    """Open the node's state (attaching to its database) and run ``action`` with it."""
    from federation.app import open_node

    async def main(dsn: str) -> int:
        async with open_node(settings, dsn, pool_size=2, apply_profile=apply_profile) as node:
            return await action(node)

    with database_for(settings) as dsn:
        return asyncio.run(main(dsn))


def read_new_password(from_stdin: bool, whose: str) -> str:
    """A new password: one line of stdin, or typed twice at the terminal.

    Without a terminal and without ``--password-stdin`` there is nobody to ask:
    refuse rather than read whatever the pipe holds.
    """
    import getpass

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ValueError(
            "no terminal to ask for the password: give it on standard input "
            "with --password-stdin (echo 'secret' | coopfed ... --password-stdin)"
        )
    first = getpass.getpass(f"New password for {whose}: ")
    if getpass.getpass("Repeat it: ") != first:
        raise ValueError("the two passwords differ")
    return first


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


# -- node lifecycle ---------------------------------------------------------


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    async def action(node: Any) -> int:
        coop = await node.coop_actor()
        print(f"@{coop.username}@{node.urls.domain} is ready: {node.urls.actor(coop.username)}")
        return 0

    with hold_data_dir(settings.data_dir, settings.base_url):
        check_identity(settings)
        code = run_async(settings, action, apply_profile=True)
    save_identity(settings)
    return code


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from federation.store import applied_versions, apply_migrations, create_pool

    async def main(dsn: str) -> int:
        pool = await create_pool(dsn, max_size=1)
        try:
            done = await apply_migrations(pool)
            versions = await applied_versions(pool)
        finally:
            await pool.close()
        print(f"applied {len(done)} migration(s); database at version {max(versions)}")
        return 0

    with database_for(settings) as dsn:
        return asyncio.run(main(dsn))


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from federation.app import create_app

    _install_uvloop()
    if not settings.data_dir.exists():  # create nothing before the port is known to be free
        check_port_free(settings.host, settings.port)
    first_start = not (settings.data_dir / IDENTITY_FILE).exists()
    where = "DATABASE_URL" if settings.database_url else f"{settings.data_dir / 'postgres'}"
    with hold_data_dir(settings.data_dir, settings.base_url):
        check_identity(settings)
        check_port_free(settings.host, settings.port)
        with database_for(settings) as dsn:
            app = create_app(settings, dsn=dsn)

            def announce(_: str) -> None:
                # Only now has the start succeeded: remember who this node is.
                save_identity(settings)
                print(
                    f"coopfed: @{settings.username}@{settings.domain} is up at {settings.base_url} "
                    f"(database: {where}); Ctrl-C stops it",
                    flush=True,
                )
                if first_start:
                    print(first_start_hint(settings), flush=True)

            web.run_app(
                app, host=settings.host, port=settings.port, print=announce, access_log=None
            )
    return 0


def first_start_hint(settings: Settings) -> str:
    data = f" --data-dir {settings.data_dir}" if settings.data_dir != Settings().data_dir else ""
    return (
        f"  public page: {settings.base_url}/\n"
        f"  admin pages: {settings.base_url}/admin\n"
        f"  set the admin password in another terminal: coopfed password{data}\n"
        f"    (from a checkout: python3 dev.py coopfed password{data})"
    )


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from federation.app import make_runner

    _install_uvloop()

    async def action(node: Any) -> int:
        runner = make_runner(node, "worker")
        print(f"coopfed worker for @{settings.username}@{settings.domain} started", flush=True)
        await runner.run()
        return 0

    try:
        return run_async(settings, action)
    except KeyboardInterrupt:
        return 0


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# -- the parser --------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from federation import cli_admin, cli_data, cli_market, cli_member

    parser = argparse.ArgumentParser(
        prog="coopfed",
        description="coopfed: a federated coop-to-coop network over ActivityPub. "
        "Run your coop's node, follow other coops, and let anyone on Mastodon follow yours.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, func: Command, help_text: str, *, run_flags: bool = False
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_settings(p, list(ENV_NAMES) if run_flags else NODE_FLAGS)
        p.set_defaults(func=func, for_run=run_flags)
        return p

    add(
        "init",
        cmd_init,
        "create the coop's identity, keys and database (run does it too)",
        run_flags=True,
    )
    add("run", cmd_run, "start the node: web server and background workers", run_flags=True)
    worker = add("worker", cmd_worker, "start one more worker process against the node's database")
    _add_settings(worker, ["log_format"])
    add("migrate", cmd_migrate, "apply database migrations (run applies them at start too)")
    cli_admin.add_commands(add)
    cli_market.add_commands(add)
    cli_data.add_commands(add)
    cli_member.add_commands(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from federation.logs import configure_logging

    configure_logging(verbose=args.verbose)
    try:
        settings = resolve_settings(args, for_run=args.for_run)
        configure_logging(settings.log_format, verbose=args.verbose)
        if needs_a_node(args, settings) and not has_node(settings):
            print(
                f"coopfed: no coopfed node in {settings.data_dir}: start one there with "
                f"`coopfed run --data-dir {settings.data_dir}` (or `coopfed init`), "
                "or give the node's --data-dir or --database-url",
                file=sys.stderr,
            )
            return 2
        return int(args.func(args, settings))
    except SettingsError as exc:
        print(f"coopfed: invalid setting {exc}", file=sys.stderr)
        return 2
    except PostgresNotFound as exc:
        print(f"coopfed: {exc}", file=sys.stderr)
        return 3
    except PostgresStartError as exc:
        print(f"coopfed: PostgreSQL did not start: {exc}", file=sys.stderr)
        return 3
    except (StartRefused, NodeAlreadyRunning) as exc:
        print(f"coopfed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # anything else: one line, the traceback with -v
        return report_failure(exc, verbose=args.verbose)


def report_failure(exc: BaseException, *, verbose: bool) -> int:
    """Print one clear line for an error (and the traceback with ``-v``); exit code 1."""
    if verbose:
        traceback.print_exception(exc)
    print(f"coopfed: {describe(exc)}", file=sys.stderr)
    if not verbose:
        print("coopfed: (run with -v to see the traceback)", file=sys.stderr)
    return 1


def describe(exc: BaseException) -> str:
    """A sentence for an admin: known failures say what to do, others name their kind."""
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return "the port is in use (another node or program); choose another with --port"
    text = str(exc).strip()
    kind = type(exc).__name__
    if type(exc).__module__.split(".")[0] in ("federation", "actors", "inbox", "outbox"):
        return text or kind
    return f"{kind}: {text}" if text else kind

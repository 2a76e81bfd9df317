"""``coopfed``: run a node and administer it from the command line.

Every setting of ``coopfed run`` is a flag and a ``COOPFED_*`` variable.  The
other commands act on the node whose data directory (``--data-dir``) or
``DATABASE_URL`` they are given: they read the identity ``coopfed run`` saved
there, attach to its database and queue work that the node's workers send.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from federation.database import database_for
from federation.embedded_pg import PostgresNotFound, PostgresStartError
from federation.settings import ENV_NAMES, Settings, SettingsError, load_settings
from federation.state_file import IDENTITY_FILE, load_identity, save_identity

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
    "trusted_proxies": "reverse proxies whose X-Forwarded-For is believed, as CIDRs "
    "(e.g. 127.0.0.1/32,::1/128; default none)",
    "key_fetch_rate": "key fetches an inbox may cause a second, per key host and per peer "
    "(default 1)",
    "key_fetch_burst": "burst of those key fetches (default 30)",
    "key_refetch_seconds": "seconds before a failed or cached key is fetched again (default 60)",
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
                flag, dest=name, action="store_const", const=True, default=None, help=help_text
            )
        else:
            parser.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=help_text)


def resolve_settings(args: argparse.Namespace, *, for_run: bool) -> Settings:
    flags = {name: getattr(args, name, None) for name in ENV_NAMES}
    settings = load_settings(flags)
    if for_run:
        return settings
    # Other commands act on the node that runs in this data directory.
    saved = load_identity(settings.data_dir)
    if saved:
        explicit = {k for k, v in flags.items() if v is not None}
        settings = settings.with_overrides(
            **{k: v for k, v in saved.items() if k not in explicit and k in ENV_NAMES}
        )
    return settings


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


def run_async(settings: Settings, action: Callable[[Any], Awaitable[int]]) -> int:
    """Open the node's state (attaching to its database) and run ``action`` with it."""
    from federation.app import open_node

    async def main(dsn: str) -> int:
        async with open_node(settings, dsn, pool_size=2) as node:
            return await action(node)

    with database_for(settings) as dsn:
        return asyncio.run(main(dsn))


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


# -- node lifecycle ---------------------------------------------------------


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    async def action(node: Any) -> int:
        coop = await node.coop_actor()
        print(f"@{coop.username}@{node.urls.domain} is ready: {node.urls.actor(coop.username)}")
        return 0

    save_identity(settings)
    return run_async(settings, action)


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
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    save_identity(settings)
    where = "DATABASE_URL" if settings.database_url else f"{settings.data_dir / 'postgres'}"
    with database_for(settings) as dsn:
        app = create_app(settings, dsn=dsn)

        def announce(_: str) -> None:
            print(
                f"coopfed: @{settings.username}@{settings.domain} is up at {settings.base_url} "
                f"(database: {where}); Ctrl-C stops it",
                flush=True,
            )

        web.run_app(app, host=settings.host, port=settings.port, print=announce, access_log=None)
    return 0


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
    except KeyboardInterrupt:
        return 130

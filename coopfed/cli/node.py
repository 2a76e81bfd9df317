"""The node's lifecycle: ``init``, ``run``, ``worker`` and ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from aiohttp import web

from coopfed.app import create_app, make_runner
from coopfed.cli.base import check_identity, check_port_free, run_async
from coopfed.database import database_for
from coopfed.processes import supervise
from coopfed.state_file import IDENTITY_FILE, hold_data_dir, save_identity
from federation.settings import Settings
from federation.store import applied_versions, apply_migrations, create_pool


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
    _install_uvloop()
    if not settings.data_dir.exists():  # create nothing before the port is known to be free
        check_port_free(settings.host, settings.port)
    first_start = not (settings.data_dir / IDENTITY_FILE).exists()
    where = "DATABASE_URL" if settings.database_url else f"{settings.data_dir / 'postgres'}"
    with hold_data_dir(settings.data_dir, settings.base_url):
        check_identity(settings)
        check_port_free(settings.host, settings.port)
        with database_for(settings) as dsn:

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

            if settings.web_processes > 1 or settings.worker_processes > 0:
                return supervise(settings, dsn, lambda: announce(""))
            app = create_app(settings, dsn=dsn)
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

"""The composition root: the only module that wires inbox, outbox and actors.

``open_node`` builds the node's shared state (pool, migrations, HTTP client,
local actors) for the web app, worker processes and CLI commands alike.
``create_app`` is the aiohttp application of ``coopfed run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from functools import partial
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from aiohttp import web

from actors.local import build_actor, ensure_local_actors
from actors.routes import setup_routes as setup_actor_routes
from admin.routes import ADMIN_APP, create_admin_app
from clientapi.routes import setup_routes as setup_clientapi_routes
from coopfed.logs import request_log_middleware
from coopfed.probes import handle_health, handle_metrics
from federation.client import SignedClient, create_session
from federation.context import NODE, NodeContext
from federation.errors import (
    DATABASE_DOWN,
    Handler,
    error_middleware,
    error_response,
)
from federation.headers import add_security_headers
from federation.jobs import JobHandler, JobRunner, RetryPolicy
from federation.netguard import AddressGuard, DomainBlocks
from federation.offload import Offloader
from federation.ratelimit import RateLimiter
from federation.settings import Settings
from federation.store import CONFIG_CHANNEL, Store, apply_migrations, create_pool
from federation.urls import Urls
from federation.version import software_version
from inbox.dispatch import make_inbox_handler
from inbox.market import BACKFILL, make_backfill_handler
from inbox.routes import setup_routes as setup_inbox_routes
from outbox.deliver import make_deliver_handler
from outbox.market import CLOSE_PROPOSAL, make_close_handler
from outbox.publish import update_profile
from outbox.routes import setup_routes as setup_outbox_routes

log = logging.getLogger(__name__)

RUNNERS = web.AppKey("runners", list[JobRunner])


def user_agent(urls: Urls) -> str:
    return f"coopfed/{software_version()} (aiohttp; +{urls.base}/)"


@contextlib.asynccontextmanager
async def open_node(
    settings: Settings,
    dsn: str,
    *,
    pool_size: int = 8,
    migrate: bool = True,
    apply_profile: bool = False,
) -> AsyncIterator[NodeContext]:
    """The node's state for the duration of the block, closed afterwards.

    With ``apply_profile`` (the node itself, not a CLI command) the profile
    settings are applied, and a change is sent to the followers as one Update.
    """
    pool = await create_pool(dsn, max_size=pool_size)
    try:
        if migrate:
            await apply_migrations(pool)
        store = Store(pool)
        urls = Urls(settings.base_url)
        guard = AddressGuard(allow_private=settings.allow_private_addresses)
        blocks = DomainBlocks(await store.list_domain_blocks())
        timeout_total = settings.delivery_timeout_seconds
        session = create_session(guard=guard)
        offload = Offloader(settings.signing_threads) if settings.signing_threads else None
        try:
            client = SignedClient(
                session=session,
                guard=guard,
                blocks=blocks,
                user_agent=user_agent(urls),
                # sock_connect, not connect: aiohttp counts waiting for a pooled
                # connection (8 per host) against ``connect``, so a burst of deliveries
                # to one slow host would fail as "timeout" and count as host failures.
                timeout=aiohttp.ClientTimeout(
                    total=timeout_total,
                    sock_connect=min(5.0, timeout_total),
                    sock_read=min(10.0, timeout_total),
                ),
                offload=offload,
            )
            node = NodeContext(
                settings=settings,
                store=store,
                urls=urls,
                client=client,
                guard=guard,
                blocks=blocks,
                inbox_limiter=RateLimiter(rate=settings.inbox_rate, burst=settings.inbox_burst),
                c2s_limiter=RateLimiter(rate=settings.c2s_rate, burst=settings.c2s_burst),
            )
            before = await store.get_local_actor_by_kind("coop")
            coop = await ensure_local_actors(store, settings, apply_profile=apply_profile)
            # Followers get an Update when what they see of the coop changed.
            if (
                before is not None
                and coop.deleted_at is None
                and build_actor(before, urls) != build_actor(coop, urls)
            ):
                await update_profile(node, coop)
            yield node
        finally:
            await session.close()
            if offload is not None:
                offload.close()
    finally:
        await pool.close()


def job_handlers(node: NodeContext) -> dict[str, JobHandler]:
    return {
        "process_inbox": make_inbox_handler(node),
        "deliver": make_deliver_handler(node),
        CLOSE_PROPOSAL: make_close_handler(node),
        BACKFILL: make_backfill_handler(node),
    }


def make_runner(
    node: NodeContext, name: str, yield_to: Callable[[], bool] | None = None
) -> JobRunner:
    settings = node.settings
    return JobRunner(
        store=node.store,
        handlers=job_handlers(node),
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.job_lease_seconds,
        policy=RetryPolicy(scale=settings.retry_scale),
        poll_interval=min(1.0, settings.job_lease_seconds / 4),
        name=name,
        metrics=node.metrics,
        yield_to=yield_to,
        max_yield=settings.worker_yield_seconds,
    )


async def follow_config_changes(node: NodeContext) -> None:
    """Reload domain blocks when the CLI (another process) changes them."""

    async def reload() -> None:
        read_at = node.blocks.version
        node.blocks.replace(await node.store.list_domain_blocks(), read_at=read_at)

    def on_notify(*args: object) -> None:
        asyncio.get_running_loop().create_task(reload())

    while True:
        try:
            async with node.store.pool.acquire() as conn:
                await conn.add_listener(CONFIG_CHANNEL, on_notify)
                try:
                    await reload()
                    while not conn.is_closed():
                        await asyncio.sleep(5)
                finally:
                    if not conn.is_closed():
                        await conn.remove_listener(CONFIG_CHANNEL, on_notify)
        except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
            # Releasing a dead connection while cancelled raises this in place of
            # CancelledError: never let it swallow the cancellation (stop would hang).
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError from exc
            log.debug("config listener lost: %r", exc)
            await asyncio.sleep(1)


async def _node_ctx(
    settings: Settings, dsn: str, run_workers: bool, app: web.Application
) -> AsyncIterator[None]:
    async with open_node(settings, dsn, apply_profile=True) as node:
        app[NODE] = node
        tasks = [asyncio.create_task(follow_config_changes(node), name="config-listener")]
        runners = [make_runner(node, f"worker-{i}") for i in range(settings.workers)]
        app[RUNNERS] = runners if run_workers else []
        if run_workers:
            tasks += [asyncio.create_task(r.run(), name=r.name) for r in runners]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


KEY_ID_RE = re.compile(r'keyid\s*=\s*"([^"]+)"', re.IGNORECASE)


@web.middleware
async def domain_block_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Any signed request (GET included) from a blocked domain gets 403."""
    signature = (
        request.headers.get("Signature-Input")
        or request.headers.get("Signature")
        or request.headers.get("Authorization", "")
    )
    match = KEY_ID_RE.search(signature) if signature else None
    if match is not None and NODE in request.app:
        try:
            host = urlsplit(match[1]).hostname or ""
        except ValueError:  # not a URL (e.g. "http://[::1"): the route refuses it
            host = ""
        if request.app[NODE].blocks.is_blocked(host):
            request.app[NODE].metrics.count_rejection("blocked_domain")
            return error_response(403, "this domain is blocked", "blocked_domain")
    return await handler(request)


def create_app(settings: Settings, *, dsn: str, run_workers: bool = True) -> web.Application:
    app = web.Application(
        middlewares=[request_log_middleware, error_middleware, domain_block_middleware],
        client_max_size=1_048_576,
    )
    app.cleanup_ctx.append(partial(_node_ctx, settings, dsn, run_workers))
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/health", handle_health)
    app.router.add_get("/metrics", handle_metrics)
    setup_actor_routes(app)
    setup_inbox_routes(app)
    setup_outbox_routes(app)
    admin = create_admin_app()
    app.add_subapp("/admin", admin)
    app[ADMIN_APP] = admin
    setup_clientapi_routes(app)
    return app

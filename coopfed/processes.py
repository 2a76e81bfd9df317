"""``coopfed run --web-processes N --worker-processes M``: several processes, one node.

The parent (this module's ``supervise``) holds the data directory, starts the
embedded PostgreSQL once (or uses ``DATABASE_URL``), applies migrations and creates
the local actors once, then starts its children:

- N web processes.  Each binds the same host and port with ``SO_REUSEPORT``, so the
  kernel spreads new connections over them.  With M = 0 each also runs the workers
  (``--workers`` tasks), as a single ``coopfed run`` does.
- M worker processes, each running ``--workers`` job runners and nothing else, so
  that accepting requests never waits behind processing and signing.  They run at a
  lower priority (``--worker-nice``), and claim no new job while the web processes
  have ``BUSY_REQUESTS`` requests in hand (a shared array counts them; at most
  ``--worker-yield-seconds`` per claim): under a burst, the CPU and the database go
  to accepting first, and the queue is worked off once it eases.

All of them share one PostgreSQL: jobs are claimed with ``FOR UPDATE SKIP LOCKED``
and a lease, so any process may take any job, and a child that dies leaves its jobs
to the others when the lease runs out.  A child that exits is started again (after a
pause that grows while it keeps failing).  SIGINT or SIGTERM to the parent stops
every child (SIGTERM, then SIGKILL after ``STOP_TIMEOUT``), then PostgreSQL.  A child
whose parent dies (even by ``kill -9``) gets SIGTERM from the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from federation.settings import Settings

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
RESTART_PAUSE_MAX = 30.0
PR_SET_PDEATHSIG = 1
# Requests in hand, over all web processes, from which the worker processes give way.
BUSY_REQUESTS = 16
# Long-lived requests (WebSockets) that are not work in hand.
_NOT_COUNTED = "/api/v1/streaming"


def _die_with_parent() -> None:
    """Linux: SIGTERM when the parent dies, whatever kills it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def in_hand_counter(slots: Any, index: int) -> Any:
    """A middleware that keeps ``slots[index]`` = this process's requests in hand."""
    from aiohttp import web

    @web.middleware
    async def count_in_hand(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(_NOT_COUNTED):
            return await handler(request)  # type: ignore[no-any-return]
        slots[index] += 1
        try:
            return await handler(request)  # type: ignore[no-any-return]
        finally:
            slots[index] -= 1

    return count_in_hand


def web_child(
    settings: Settings, dsn: str, run_workers: bool, ready: Any, slots: Any, index: int
) -> None:
    """One web process: the whole app on the shared port."""
    from aiohttp import web

    from coopfed.app import create_app

    _die_with_parent()
    _install_uvloop()
    app = create_app(settings, dsn=dsn, run_workers=run_workers)
    app.middlewares.insert(0, in_hand_counter(slots, index))
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        reuse_port=True,
        print=lambda _: ready.send(os.getpid()),
        access_log=None,
    )


def worker_child(settings: Settings, dsn: str, ready: Any, slots: Any) -> None:
    """One worker process: ``--workers`` job runners, and the domain-block listener."""
    from coopfed.app import follow_config_changes, make_runner, open_node

    _die_with_parent()
    _install_uvloop()
    if settings.worker_nice:
        os.nice(settings.worker_nice)

    async def main() -> None:
        async with open_node(settings, dsn, migrate=False) as node:
            count = max(1, settings.workers)

            def busy() -> bool:
                return bool(sum(slots) >= BUSY_REQUESTS)

            runners = [
                make_runner(node, f"worker-{os.getpid()}-{i}", yield_to=busy) for i in range(count)
            ]
            ready.send(os.getpid())
            await asyncio.gather(follow_config_changes(node), *(r.run() for r in runners))

    async def until_signalled() -> None:
        task = asyncio.ensure_future(main())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(until_signalled())


@dataclass
class Child:
    kind: str  # "web" or "worker"
    index: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float = 0.0
    ready: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"coopfed-{self.kind}-{self.index}"


class Supervisor:
    def __init__(self, settings: Settings, dsn: str) -> None:
        self.settings = settings
        self.dsn = dsn
        self.context = multiprocessing.get_context("spawn")
        workers = settings.worker_processes
        self.children = [Child("web", i) for i in range(settings.web_processes)]
        self.children += [Child("worker", i) for i in range(workers)]
        # Requests in hand, one slot per web process (each writes only its own).
        self.in_hand = self.context.Array("i", settings.web_processes, lock=False)
        self.stopping = False

    def _start(self, child: Child) -> None:
        receiver, sender = self.context.Pipe(duplex=False)
        if child.kind == "web":
            run_workers = self.settings.worker_processes == 0
            self.in_hand[child.index] = 0  # a killed process may have left a count
            args: tuple[Any, ...] = (
                self.settings,
                self.dsn,
                run_workers,
                sender,
                self.in_hand,
                child.index,
            )
            target: Callable[..., None] = web_child
        else:
            args, target = (self.settings, self.dsn, sender, self.in_hand), worker_child
        process = self.context.Process(target=target, args=args, name=child.name, daemon=False)
        # The child starts with Ctrl-C ignored (no KeyboardInterrupt traceback while it
        # imports); its event loop takes SIGINT over once running, and the parent
        # stops it with SIGTERM in any case.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            process.start()
        finally:
            signal.signal(signal.SIGINT, previous)
        sender.close()
        child.process, child.ready, child.started_at = process, receiver, time.monotonic()

    def start_all(self) -> None:
        """Start every child and wait until each is ready (web: listening)."""
        for child in self.children:
            self._start(child)
        deadline = time.monotonic() + READY_TIMEOUT
        for child in self.children:
            assert child.process is not None
            waited = multiprocessing.connection.wait(
                [child.ready, child.process.sentinel], max(0.0, deadline - time.monotonic())
            )
            try:
                started = child.ready in waited and child.ready.poll()
                if started:
                    child.ready.recv()
            except (EOFError, OSError):
                started = False
            if self.stopping:  # Ctrl-C or SIGTERM while starting: not a failure
                return
            if not started:
                self.stop_all()
                raise RuntimeError(f"{child.name} did not start (see the log above)")

    def watch(self) -> None:
        """Until stopped: start again any child that exits."""
        while not self.stopping:
            sentinels = [c.process.sentinel for c in self.children if c.process is not None]
            multiprocessing.connection.wait(sentinels, timeout=0.5)
            now = time.monotonic()
            for child in self.children:
                if self.stopping:
                    return
                process = child.process
                if process is not None and process.exitcode is not None:
                    quick = now - child.started_at < 10
                    child.failures = child.failures + 1 if quick else 1
                    pause = min(RESTART_PAUSE_MAX, 0.5 * 2 ** (child.failures - 1))
                    log.warning(
                        "%s exited with %s; starting it again in %.1f s",
                        child.name,
                        process.exitcode,
                        pause,
                    )
                    child.process, child.restart_at = None, now + pause
                    if child.kind == "web":
                        self.in_hand[child.index] = 0  # what it held died with it
                if child.process is None and now >= child.restart_at:
                    self._start(child)

    def stop_all(self) -> None:
        self.stopping = True
        running = [c.process for c in self.children if c.process is not None]
        for process in running:
            if process.exitcode is None and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                log.warning("%s did not stop in %.0f s: killed", process.name, STOP_TIMEOUT)
                process.kill()
                process.join(5)


async def prepare(settings: Settings, dsn: str) -> None:
    """Migrations, the local actors and the profile, once, before any child starts."""
    from coopfed.app import open_node

    async with open_node(settings, dsn, pool_size=2, apply_profile=True):
        pass


def supervise(settings: Settings, dsn: str, announce: Callable[[], None]) -> int:
    """Run the children until SIGINT or SIGTERM; returns the exit code."""
    asyncio.run(prepare(settings, dsn))
    supervisor = Supervisor(settings, dsn)

    def stop(signum: int, frame: object) -> None:
        supervisor.stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        supervisor.start_all()
        if not supervisor.stopping:
            announce()
            supervisor.watch()
    finally:
        supervisor.stop_all()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0

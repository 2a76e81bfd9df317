"""CPU work off the event loop, in batches: RSA signing for outgoing requests.

An RSA-2048 signature takes ~0.3 ms of CPU, and OpenSSL releases the GIL while it
computes.  Signed inline, it stalls the event loop (every delivery, every request the
process is serving waits); signed in a thread, it runs on another core while the loop
goes on with HTTP and the database.

Handing one call to a thread costs the loop a wake-up and a future.  ``Offloader``
hands over a whole batch instead: whatever was asked for while the previous batch was
running (as ``federation.store.batching.Coalescer`` does with statements), so a busy
process pays that cost once per batch, and an idle one waits for nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

MAX_BATCH = 64

_Call = tuple[Callable[[], Any], "asyncio.Future[Any]"]


def _run_all(calls: list[Callable[[], Any]]) -> list[tuple[bool, Any]]:
    """In the thread: each call's result, or the exception it raised."""
    out: list[tuple[bool, Any]] = []
    for call in calls:
        try:
            out.append((True, call()))
        except Exception as exc:
            out.append((False, exc))
    return out


class Offloader:
    """Runs calls in ``threads`` worker threads, a batch per hand-over."""

    def __init__(self, threads: int = 1, *, max_batch: int = MAX_BATCH) -> None:
        self._threads = max(1, threads)
        self._max_batch = max_batch
        self._executor: ThreadPoolExecutor | None = None
        self._waiting: list[_Call] = []
        self._flushers: set[asyncio.Task[None]] = set()

    async def run(self, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append((call, future))
        if len(self._flushers) < self._threads:
            self._flushers.add(loop.create_task(self._flush()))
        return await future

    async def _flush(self) -> None:
        try:
            await self._flush_waiting()
        finally:
            # Leave the set in the same step that saw nothing waiting: a done callback
            # would run later, and a call asked for in between would find the set full
            # and wait for ever.
            task = asyncio.current_task()
            if task is not None:
                self._flushers.discard(task)

    async def _flush_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="offload")
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            self._waiting = self._waiting[self._max_batch :]
            try:
                results = await loop.run_in_executor(
                    self._executor, _run_all, [call for call, _ in batch]
                )
            except BaseException:
                for _, future in batch:
                    future.cancel()
                raise
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                if future.done():  # its caller went away
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def close(self) -> None:
        for flusher in list(self._flushers):
            flusher.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        for _, future in self._waiting:
            future.cancel()
        self._waiting = []

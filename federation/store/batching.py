"""Coalescing concurrent calls into one statement: one round trip and one commit.

A ``Coalescer`` runs whatever arrived while its previous batch was in the database,
so an idle node waits for nothing and a busy one writes hundreds of rows per commit
(a commit waits for an fsync: ~0.1 to 3 ms, depending on the disk).  Each caller
gets its own result once its batch is committed, as if it had run alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import asyncpg

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 256
# What the database says of one bad row: the batch is then run row by row, so
# that only that row's caller gets the error.
ROW_REFUSED: tuple[type[Exception], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)


class Coalescer(Generic[T, R]):
    """Calls ``run(items)`` (one result per item, in order) for batches of callers."""

    def __init__(
        self, run: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_batch: int = MAX_BATCH
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                self._waiting = self._waiting[self._max_batch :]
                try:
                    results = await self._run_batch([item for item, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:  # a lost connection, a closed pool: every caller
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its caller went away; the batch ran anyway
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._flusher = None
            for _, future in self._waiting:  # only when cancelled
                future.cancel()
            self._waiting = []

    async def _run_batch(self, items: list[T]) -> list[R | Exception]:
        try:
            results = list(await self._run(items))
        except ROW_REFUSED as exc:
            if len(items) == 1:
                return [exc]
        else:
            if len(results) != len(items):
                raise RuntimeError(f"a batch of {len(items)} gave {len(results)} results")
            return list(results)
        one_by_one: list[R | Exception] = []
        for item in items:  # find the row the database refuses
            try:
                one_by_one.extend(await self._run([item]))
            except ROW_REFUSED as exc:
                one_by_one.append(exc)
        return one_by_one


def coalescer(
    owner: object, name: str, run: Callable[[list[T]], Awaitable[Sequence[R]]]
) -> Coalescer[T, R]:
    """``owner``'s coalescer called ``name`` (a store keeps one per statement)."""
    found: dict[str, Coalescer[T, R]] = owner.__dict__.setdefault("_coalescers", {})
    made = found.get(name)
    if made is None:
        made = found[name] = Coalescer(run)
    return made

"""Limits on the key fetches an inbox POST can cause, so the inbox reflects nothing.

Anyone may POST to an inbox with any ``keyId``; before the signature can be checked
its key may have to be fetched.  Without limits that makes the node a request
reflector.  So, per node (in memory):

- fetches are rate-limited per ``keyId`` host and per peer address (the client,
  behind a trusted proxy the address it forwarded for);
- a key that could not be fetched or used is not tried again for ``interval``
  seconds (a negative cache);
- a cached key is fetched again (after a failed signature: the peer may have
  rotated it) at most once per ``interval`` (Mastodon waits about a minute).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar
from weakref import WeakKeyDictionary

from federation.context import NodeContext
from federation.ratelimit import RateLimiter
from federation.store import Store

MAX_KEYS = 10_000
V = TypeVar("V")


class KeyFetchGuard:
    def __init__(
        self,
        *,
        interval: float,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._by_host = RateLimiter(rate=rate, burst=burst, max_keys=MAX_KEYS, clock=clock)
        self._by_peer = RateLimiter(rate=rate, burst=burst, max_keys=MAX_KEYS, clock=clock)
        self._failed: OrderedDict[str, tuple[float, int, str, str]] = OrderedDict()
        self._fetched: OrderedDict[str, float] = OrderedDict()

    def _fresh(self, stamp: float) -> bool:
        return self._clock() - stamp < self.interval

    def failure(self, key_id: str) -> tuple[int, str, str] | None:
        """(status, reason, detail) of a recent failure to get this key, if any."""
        found = self._failed.get(key_id)
        if found is None or not self._fresh(found[0]):
            return None
        return found[1], found[2], found[3]

    def record_failure(self, key_id: str, status: int, reason: str, detail: str) -> None:
        _put(self._failed, key_id, (self._clock(), status, reason, detail))

    def may_refetch(self, key_id: str) -> bool:
        stamp = self._fetched.get(key_id)
        return stamp is None or not self._fresh(stamp)

    def admit(self, key_host: str, peer: str) -> float:
        """0.0 if a fetch for ``key_host`` asked by ``peer`` may go now, else seconds to wait."""
        wait = self._by_peer.take(peer) if peer else 0.0
        return wait or self._by_host.take(key_host)

    def record_fetch(self, key_id: str) -> None:
        _put(self._fetched, key_id, self._clock())


def _put(table: OrderedDict[str, V], key: str, value: V) -> None:
    table.pop(key, None)
    table[key] = value
    while len(table) > MAX_KEYS:
        table.popitem(last=False)


_guards: WeakKeyDictionary[Store, KeyFetchGuard] = WeakKeyDictionary()


def key_guard(node: NodeContext) -> KeyFetchGuard:
    """The node's guard (one per node, made on first use from its settings)."""
    guard = _guards.get(node.store)
    if guard is None:
        settings = node.settings
        guard = KeyFetchGuard(
            interval=settings.key_refetch_seconds,
            rate=settings.key_fetch_rate,
            burst=settings.key_fetch_burst,
        )
        _guards[node.store] = guard
    return guard

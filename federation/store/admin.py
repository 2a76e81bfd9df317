"""SQL for the admin's controls: domain blocks and delivery health per host."""

from __future__ import annotations

import time
from datetime import date

import asyncpg

from federation.store.records import DeliveryRefusal, HostHealth

HOST_MEMORY_SECONDS = 30.0
HOST_MEMORY_SIZE = 10_000
UNKNOWN = object()


class AdminQueries:
    pool: asyncpg.Pool

    async def list_domain_blocks(self) -> list[str]:
        rows = await self.pool.fetch("SELECT domain FROM domain_blocks ORDER BY domain")
        return [r[0] for r in rows]

    async def add_domain_block(self, domain: str, reason: str = "") -> bool:
        status = await self.pool.execute(
            "INSERT INTO domain_blocks (domain, reason) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            domain,
            reason,
        )
        return bool(status == "INSERT 0 1")

    async def remove_domain_block(self, domain: str) -> bool:
        status = await self.pool.execute("DELETE FROM domain_blocks WHERE domain = $1", domain)
        return bool(status == "DELETE 1")

    async def record_host_failure(
        self, host: str, *, today: date, unavailable_after_days: int
    ) -> bool:
        """Count a failed delivery; returns True when the host is now unavailable."""
        value = await self.pool.fetchval(
            """INSERT INTO hosts (host, failure_days, last_failure_at)
               VALUES ($1, ARRAY[$2::date], now())
               ON CONFLICT (host) DO UPDATE SET
                   failure_days = CASE WHEN $2::date = ANY(hosts.failure_days)
                                       THEN hosts.failure_days
                                       ELSE hosts.failure_days || $2::date END,
                   last_failure_at = now()
               RETURNING cardinality(failure_days) >= $3""",
            host,
            today,
            unavailable_after_days,
        )
        if value:
            await self.pool.execute("UPDATE hosts SET unavailable = true WHERE host = $1", host)
        self._host_states()[host] = (time.monotonic(), bool(value))
        return bool(value)

    async def revive_host(self, host: str) -> None:
        """Any success, or any activity the host sends us, makes it available again."""
        if self._known_host_state(host) is None:
            return  # no failure recorded: nothing to delete
        await self.pool.execute("DELETE FROM hosts WHERE host = $1", host)
        self._host_states()[host] = (time.monotonic(), None)

    async def is_host_unavailable(self, host: str) -> bool:
        known = self._known_host_state(host)
        if known is not UNKNOWN:
            return bool(known)
        value = await self.pool.fetchval("SELECT unavailable FROM hosts WHERE host = $1", host)
        self._host_states()[host] = (time.monotonic(), value)
        return bool(value)

    # What this process last saw of a host's row: None when it has none, else its
    # ``unavailable``.  Every delivery and every processed activity asks, so the
    # answer is reused for HOST_MEMORY_SECONDS; another process's change (a
    # ``coopfed worker`` recording a failure) is seen that much later at most.
    def _host_states(self) -> dict[str, tuple[float, bool | None]]:
        states: dict[str, tuple[float, bool | None]] = self.__dict__.setdefault("_hosts", {})
        if len(states) > HOST_MEMORY_SIZE:
            states.clear()
        return states

    def _known_host_state(self, host: str) -> bool | object | None:
        """The remembered state, or ``UNKNOWN`` when there is none (or it is old)."""
        seen = self._host_states().get(host)
        if seen is None or time.monotonic() - seen[0] > HOST_MEMORY_SECONDS:
            return UNKNOWN
        return seen[1]

    async def record_delivery_refusal(
        self, host: str, *, inbox: str, activity_id: str, status: int | None, answer: str
    ) -> None:
        """Keep why ``host`` refused a delivery (its last refusal only)."""
        await self.pool.execute(
            """INSERT INTO delivery_refusals (host, status, answer, inbox, activity_id, at)
               VALUES ($1, $2, $3, $4, $5, now())
               ON CONFLICT (host) DO UPDATE SET status = excluded.status,
                   answer = excluded.answer, inbox = excluded.inbox,
                   activity_id = excluded.activity_id, at = excluded.at""",
            host,
            status,
            answer.replace("\x00", "\ufffd"),
            inbox,
            activity_id,
        )
        self._refusal_states()[host] = (time.monotonic(), True)

    async def clear_delivery_refusal(self, host: str) -> None:
        """A delivery succeeded: forget the host's last refusal (one DELETE per host and
        HOST_MEMORY_SECONDS at most, not one per delivery)."""
        seen = self._refusal_states().get(host)
        if seen is not None and not seen[1] and time.monotonic() - seen[0] <= HOST_MEMORY_SECONDS:
            return
        await self.pool.execute("DELETE FROM delivery_refusals WHERE host = $1", host)
        self._refusal_states()[host] = (time.monotonic(), False)

    def _refusal_states(self) -> dict[str, tuple[float, bool]]:
        states: dict[str, tuple[float, bool]] = self.__dict__.setdefault("_refusals", {})
        if len(states) > HOST_MEMORY_SIZE:
            states.clear()
        return states

    async def delivery_failures(self) -> list[DeliveryRefusal]:
        """The last refused delivery of each host that has not accepted one since."""
        rows = await self.pool.fetch(
            """SELECT host, status, answer, inbox, activity_id, at
               FROM delivery_refusals ORDER BY at DESC, host"""
        )
        return [DeliveryRefusal(**dict(r)) for r in rows]

    async def list_failing_hosts(self) -> list[HostHealth]:
        rows = await self.pool.fetch(
            """SELECT host, cardinality(failure_days) AS failure_days, last_failure_at,
                      unavailable
               FROM hosts ORDER BY unavailable DESC, last_failure_at DESC"""
        )
        return [HostHealth(**dict(r)) for r in rows]

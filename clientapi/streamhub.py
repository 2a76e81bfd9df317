"""Live updates for the streaming API: who listens, and what reaches them.

PostgreSQL tells every web process what changed (``STREAM_CHANNEL``, written by
migration 9's triggers whichever process stored the row); the hub of each
process reads the rows and gives each of its subscribers what its streams show:

- ``user``: the member's home timeline (``update``), her notifications
  (``notification``) and deletions (``delete``); ``user:notification``: only the
  notifications;
- ``public`` (``public:local``): public statuses (of this node), and deletions.

Each subscriber has a bounded queue: a client that reads too slowly overflows it
and is disconnected, so a stuck reader never costs more than its queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from clientapi.notifications import TYPES, notification_rows, render
from clientapi.statuses import render_statuses
from federation.context import NodeContext
from federation.errors import DATABASE_DOWN
from federation.store import STREAM_CHANNEL, LocalActor, Paging, StoredObject

log = logging.getLogger(__name__)

USER_STREAMS = frozenset({"user", "user:notification"})
PUBLIC_STREAMS = frozenset({"public", "public:local"})
STREAMS = USER_STREAMS | PUBLIC_STREAMS
MAX_PENDING_EVENTS = 10_000  # ids from PostgreSQL not read yet; beyond, the oldest go
NOTIFICATION_WINDOW = 20  # the newest notifications looked at after each change
SEEN_LIMIT = 200  # notification ids a subscriber remembers having been sent


@dataclass(frozen=True, slots=True)
class Event:
    stream: str
    event: str
    payload: str  # a JSON document (update, notification) or a status id (delete)

    def websocket_text(self) -> str:
        message = {"stream": [self.stream], "event": self.event, "payload": self.payload}
        return orjson.dumps(message).decode()

    def sse_text(self) -> str:
        return f"event: {self.event}\ndata: {self.payload}\n\n"


@dataclass(eq=False)
class Subscriber:
    """One open stream connection: its member, streams and bounded queue."""

    member: LocalActor
    token_id: int
    scopes: list[str]
    limit: int
    streams: set[str] = field(default_factory=set)
    overflowed: bool = False
    stopping: bool = False
    _queue: deque[Event] = field(default_factory=deque)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # overflowed or stopping
    _seen: deque[int] = field(default_factory=deque)

    def push(self, event: Event) -> None:
        if self.overflowed or self.stopping:
            return
        if len(self._queue) >= self.limit:
            self.overflowed = True  # the connection is dropped: never unbounded memory
            self._queue.clear()
            self.ended.set()
        else:
            self._queue.append(event)
        self._wake.set()

    def stop(self) -> None:
        self.stopping = True
        self._wake.set()
        self.ended.set()

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event; None when the subscriber must end, or after ``timeout``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self._queue and not self.overflowed and not self.stopping:
                    self._wake.clear()
                    await self._wake.wait()
        if self.overflowed or self.stopping or not self._queue:
            return None
        return self._queue.popleft()

    def seen(self, notification_id: int) -> bool:
        if notification_id in self._seen:
            return True
        self._seen.append(notification_id)
        if len(self._seen) > SEEN_LIMIT:
            self._seen.popleft()
        return False

    @property
    def wants_notifications(self) -> bool:
        return bool(self.streams & USER_STREAMS)


class StreamHub:
    """The subscribers of one web process, fed by PostgreSQL LISTEN/NOTIFY."""

    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self.subscribers: set[Subscriber] = set()
        self.per_token: Counter[int] = Counter()
        self._pending: deque[dict[str, Any]] = deque(maxlen=MAX_PENDING_EVENTS)
        self._wake = asyncio.Event()
        self.listening = asyncio.Event()

    # -- subscribers ------------------------------------------------------------------

    def register(self, sub: Subscriber) -> bool:
        """Add a subscriber, unless its token already holds as many streams as allowed."""
        if self.per_token[sub.token_id] >= self.node.settings.stream_connections_per_token:
            return False
        self.per_token[sub.token_id] += 1
        self.subscribers.add(sub)
        return True

    def unregister(self, sub: Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.discard(sub)
            self.per_token[sub.token_id] -= 1
            if self.per_token[sub.token_id] <= 0:
                del self.per_token[sub.token_id]

    async def prime(self, sub: Subscriber) -> None:
        """Remember the notifications the member has already: only new ones are sent."""
        for row in await self._notification_rows(sub.member):
            sub.seen(row.id)

    def stop_all(self) -> None:
        for sub in list(self.subscribers):
            sub.stop()

    # -- PostgreSQL ---------------------------------------------------------------------

    async def run(self) -> None:
        """Listen and dispatch until cancelled; a lost connection is re-opened."""
        worker = asyncio.create_task(self._dispatch_loop(), name="stream-dispatch")
        try:
            await self._listen()
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.node.store.pool.acquire() as conn:
                    await conn.add_listener(STREAM_CHANNEL, self._on_notify)
                    self.listening.set()
                    try:
                        while not conn.is_closed():
                            await asyncio.sleep(5)
                    finally:
                        self.listening.clear()
                        if not conn.is_closed():
                            await conn.remove_listener(STREAM_CHANNEL, self._on_notify)
            except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from exc
                log.debug("stream listener lost: %r", exc)
                await asyncio.sleep(1)

    def _on_notify(self, _conn: object, _pid: object, _channel: object, payload: object) -> None:
        try:
            event = orjson.loads(str(payload))
        except orjson.JSONDecodeError:
            return
        if isinstance(event, dict) and self.subscribers:
            self._pending.append(event)
            self._wake.set()

    async def _dispatch_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch = list(self._pending)
            self._pending.clear()
            try:
                await self.dispatch(batch)
            except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
                log.warning("stream dispatch failed: %r", exc)
            except Exception:  # a row no one foresaw: the streams go on with the next
                log.exception("stream dispatch failed")

    # -- what each subscriber gets ----------------------------------------------------

    async def dispatch(self, batch: list[dict[str, Any]]) -> None:
        """Send the changes of ``batch`` (from the triggers) to the subscribers."""
        notices = False
        for event in batch:
            kind, seq = event.get("k"), event.get("s")
            if kind == "n":
                notices = True
            elif kind in ("o", "d") and isinstance(seq, int) and not isinstance(seq, bool):
                obj = await self.node.store.object_by_seq(seq)
                if obj is None:
                    continue
                if kind == "o" and obj.deleted_at is None:
                    notices = True  # a mention, or a reply to a member
                    await self._send_update(obj)
                elif kind == "d":
                    self._send_delete(obj)
        if notices:
            for sub in list(self.subscribers):
                if sub.wants_notifications:
                    await self._send_notifications(sub)

    async def _send_update(self, obj: StoredObject) -> None:
        rendered: dict[int, str] = {}  # one rendering per member
        for sub in list(self.subscribers):
            for stream in sorted(sub.streams):
                if not await self._shows(sub, stream, obj):
                    continue
                if sub.member.id not in rendered:
                    [status] = await render_statuses(self.node, sub.member, [obj])
                    rendered[sub.member.id] = orjson.dumps(status).decode()
                sub.push(Event(stream, "update", rendered[sub.member.id]))

    async def _shows(self, sub: Subscriber, stream: str, obj: StoredObject) -> bool:
        if stream in PUBLIC_STREAMS:
            return obj.visibility == "public" and (stream == "public" or obj.local)
        if stream != "user":
            return False
        viewer = self.node.urls.actor(sub.member.username)
        window = Paging(max_id=obj.seq + 1, since_id=obj.seq - 1, limit=1)
        return bool(await self.node.store.home_timeline(viewer, sub.member.id, window))

    def _send_delete(self, obj: StoredObject) -> None:
        for sub in list(self.subscribers):
            for stream in sorted(sub.streams):
                if stream == "user" or (stream in PUBLIC_STREAMS and obj.visibility == "public"):
                    sub.push(Event(stream, "delete", str(obj.seq)))

    async def _notification_rows(self, member: LocalActor) -> list[Any]:
        return await notification_rows(
            self.node,
            member,
            types=list(TYPES),
            account=None,
            page=Paging(limit=NOTIFICATION_WINDOW),
        )

    async def _send_notifications(self, sub: Subscriber) -> None:
        rows = [r for r in await self._notification_rows(sub.member) if not sub.seen(r.id)]
        if not rows:
            return
        rows.reverse()  # oldest first
        stream = "user" if "user" in sub.streams else "user:notification"
        for item in await render(self.node, sub.member, rows):
            sub.push(Event(stream, "notification", orjson.dumps(item).decode()))

"""The ``deliver`` job: one signed POST of one activity to one inbox.

Outcome rules as Mastodon's delivery worker applies them: 2xx is
done; a 4xx other than 401, 408 and 429 is permanent; anything else is retried
with backoff.  A host that keeps failing on several distinct days is marked
unavailable and skipped until it succeeds or sends us something.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from urllib.parse import urlsplit

import orjson

from federation.client import ANSWER_HEAD, FetchError
from federation.context import NodeContext
from federation.jobs import FailJob, JobHandler, RetryJob
from federation.store import Job, LocalActor

log = logging.getLogger(__name__)

RETRYABLE_4XX = frozenset({401, 408, 429})
BODY_CACHE_SIZE = 256
# The sending actor is read once per this many seconds, not once per delivery.
ACTOR_MEMORY_SECONDS = 10.0


def classify_status(status: int) -> str:
    """``delivered``, ``permanent`` or ``retry`` for an HTTP answer."""
    if 200 <= status < 300:
        return "delivered"
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        return "permanent"
    if status == 501:
        return "permanent"
    return "retry"


def make_deliver_handler(node: NodeContext) -> JobHandler:
    bodies: OrderedDict[str, bytes] = OrderedDict()

    async def body_of(activity_id: str) -> bytes | None:
        cached = bodies.get(activity_id)
        if cached is not None:
            bodies.move_to_end(activity_id)
            return cached
        stored = await node.store.get_outbox_activity(activity_id)
        if stored is None:
            return None
        data = orjson.dumps(stored["body"])
        bodies[activity_id] = data
        if len(bodies) > BODY_CACHE_SIZE:
            bodies.popitem(last=False)
        return data

    actors: dict[str, tuple[float, LocalActor | None]] = {}

    async def sender(username: str) -> LocalActor | None:
        seen = actors.get(username)
        if seen is not None and time.monotonic() - seen[0] < ACTOR_MEMORY_SECONDS:
            return seen[1]
        actor = await node.store.get_local_actor(username)
        if len(actors) > BODY_CACHE_SIZE:
            actors.clear()
        actors[username] = (time.monotonic(), actor)
        return actor

    async def deliver(job: Job) -> None:
        inbox = str(job.payload["inbox"])
        host = urlsplit(inbox).hostname or ""
        if node.blocks.is_blocked(host):
            node.metrics.count_delivery("blocked")
            raise FailJob(f"{host} is blocked")
        if await node.store.is_host_unavailable(host):
            node.metrics.count_delivery("skipped")
            raise FailJob(f"{host} is marked unavailable")
        body = await body_of(str(job.payload["activity_id"]))
        if body is None:
            raise FailJob("the activity is no longer in the outbox")
        actor = await sender(str(job.payload["actor"]))
        if actor is None:
            raise FailJob("the sending actor no longer exists")
        activity_id = str(job.payload["activity_id"])
        try:
            result = await node.client.post_activity(inbox, body, signer=node.signer_for(actor))
        except FetchError as exc:
            if not exc.temporary and exc.reason in ("blocked_address", "blocked_domain"):
                node.metrics.count_delivery("blocked")
                raise FailJob(str(exc)) from exc
            await node.store.record_delivery_refusal(
                host, inbox=inbox, activity_id=activity_id, status=exc.status, answer=str(exc)
            )
            await _host_failed(node, host)
            node.metrics.count_delivery("retry")
            raise RetryJob(str(exc)) from exc
        outcome = classify_status(result.status)
        node.metrics.count_delivery(outcome)
        if outcome == "delivered":
            log.debug("delivered %s to %s: %d", job.payload["activity_id"], inbox, result.status)
            await node.store.revive_host(host)
            await node.store.clear_delivery_refusal(host)
            return
        answer = result.answer[:ANSWER_HEAD].decode("utf-8", errors="replace")
        log.info("%s refused %s: %d %r", inbox, activity_id, result.status, answer)
        await node.store.record_delivery_refusal(
            host, inbox=inbox, activity_id=activity_id, status=result.status, answer=answer
        )
        if outcome == "permanent":
            raise FailJob(f"{inbox} answered {result.status}")
        await _host_failed(node, host)
        raise RetryJob(f"{inbox} answered {result.status}")

    return deliver


async def _host_failed(node: NodeContext, host: str) -> None:
    now_unavailable = await node.store.record_host_failure(
        host, today=node.clock().date(), unavailable_after_days=node.settings.unavailable_after_days
    )
    if now_unavailable:
        log.warning(
            "%s failed on %d distinct days: marked unavailable",
            host,
            node.settings.unavailable_after_days,
        )

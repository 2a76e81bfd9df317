"""The ``process_inbox`` job: hand a stored activity to its handler.

A handler that raises ``Refused`` records why and applies nothing (a peer's
illegal request is logged, never applied).  A temporary network failure is
retried by the job runner; anything else a remote server sent is recorded as
an error outcome so that no input can crash or wedge a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from urllib.parse import urlsplit

from actors.remote import InvalidActor
from federation.client import FetchError
from federation.context import NodeContext
from federation.jobs import FailJob, JobHandler, RetryJob
from federation.shapes import normalise
from federation.store import InboxActivity, Job
from inbox import content, follow, market
from inbox.errors import Refused
from outbox.publish import ActionError

log = logging.getLogger(__name__)

ActivityHandler = Callable[[NodeContext, InboxActivity], Awaitable[str]]

HANDLERS: dict[str, ActivityHandler] = {
    "Follow": follow.handle_follow,
    "Accept": market.handle_accept,
    "Reject": market.handle_reject,
    "Create": market.handle_create,
    "Update": market.handle_update,
    "Delete": market.handle_delete,
    "Announce": content.handle_announce,
    "Like": content.handle_like,
    "Undo": market.handle_undo,
    "Offer": market.handle_offer,
}


async def process_activity(node: NodeContext, item: InboxActivity) -> str:
    handler = HANDLERS.get(item.type)
    if handler is None:
        return f"ignored: unsupported type {item.type}"
    # The one boundary: handlers read every incoming shape as one (federation/shapes.py).
    item = replace(item, body=normalise(item.body))
    try:
        return await handler(node, item)
    except Refused as exc:
        log.warning(
            "refused %s %s from %s: %s", item.type, item.activity_id, item.actor, exc.reason
        )
        return f"refused: {exc.reason}"
    except FetchError as exc:
        if exc.temporary:
            raise RetryJob(str(exc)) from exc
        return f"failed: {exc}"
    except InvalidActor as exc:
        return f"failed: {exc}"
    except ActionError as exc:
        return f"failed: {exc.detail}"
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Unexpected shapes from a remote server: record, never crash the worker.
        log.warning("malformed %s %s: %r", item.type, item.activity_id, exc)
        return f"failed: malformed activity ({type(exc).__name__})"


def make_inbox_handler(node: NodeContext) -> JobHandler:
    async def process_inbox(job: Job) -> None:
        item = await node.store.get_inbox_activity(int(job.payload["inbox_id"]))
        if item is None:
            return
        await node.store.revive_host((urlsplit(item.actor).hostname or "").lower())
        try:
            outcome = await process_activity(node, item)
        except RetryJob as exc:
            if job.attempts < job.max_attempts:
                raise
            # The last attempt: record the outcome, so the row stops counting
            # against the actor's queue cap (max_pending_per_actor).
            await node.store.finish_inbox_activity(item.id, f"failed: gave up: {exc.error}")
            raise FailJob(f"gave up: {exc.error}") from exc
        await node.store.finish_inbox_activity(item.id, outcome)

    return process_inbox

"""The ``process_inbox`` job: one routing table from a stored activity to its handler.

An inbox POST is verified and stored by ``inbox.routes`` (one ``inbox`` row and
a ``process_inbox`` job); the job reads the row back, finds what the activity
is about (``subject_of``) and runs the handler that ``ROUTES`` names for
(activity type, subject kind), falling back to (activity type, ``ANY``).

A handler that raises ``Refused`` records why and applies nothing (a peer's
illegal request is logged, never applied).  A temporary network failure is
retried by the job runner; anything else a remote server sent is recorded as
an error outcome so that no input can crash or wedge a worker.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from urllib.parse import urlsplit

from actors.remote import InvalidActor
from federation.client import FetchError
from federation.context import NodeContext
from federation.jobs import FailJob, JobHandler, RetryJob
from federation.jsonld import first_type, get_id, has_type
from federation.shapes import normalise
from federation.store import InboxActivity, Job
from inbox import content, follow, market, polls
from inbox.errors import Refused
from inbox.handling import (
    AGREEMENT,
    ANY,
    FOLLOW,
    OFFER,
    PROPOSAL,
    RECEIPT,
    Handler,
    Outcome,
    Subject,
    failed,
    ignored,
    refused,
)
from outbox.errors import ActionError
from outbox.proposals import is_proposal

log = logging.getLogger(__name__)

ROUTES: dict[tuple[str, str], Handler] = {
    ("Follow", ANY): follow.handle_follow,
    ("Accept", OFFER): market.handle_accept,
    ("Accept", ANY): follow.handle_accept,
    ("Reject", OFFER): market.handle_reject,
    ("Reject", AGREEMENT): market.handle_cancel,
    ("Reject", ANY): follow.handle_reject,
    ("Undo", OFFER): market.handle_withdraw,
    ("Undo", FOLLOW): follow.handle_undo_follow,
    ("Undo", "Like"): content.handle_undo_reaction,
    ("Undo", "Announce"): content.handle_undo_reaction,
    ("Undo", ""): content.handle_undo_reaction,  # an id we cannot place: a Like or an Announce
    ("Offer", ANY): market.handle_offer,
    ("Create", RECEIPT): market.handle_receipt,
    ("Create", PROPOSAL): market.handle_create_proposal,
    ("Create", ANY): content.handle_create,
    ("Update", AGREEMENT): market.handle_agreement_update,
    ("Update", PROPOSAL): market.handle_update_proposal,
    ("Update", "Question"): polls.handle_update_question,
    ("Update", ANY): content.handle_update,
    ("Delete", ANY): content.handle_delete,
    ("Announce", ANY): content.handle_announce,
    ("Like", ANY): content.handle_like,
}


async def subject_of(node: NodeContext, item: InboxActivity) -> Subject:
    """What the activity is about: its object's kind, and the exchange it names."""
    inner = item.body.get("object")
    object_id = get_id(inner)
    if item.type in ("Accept", "Reject", "Undo") and object_id:
        # An answer to an exchange names the Offer (or, for a Reject, the Agreement).
        agreement = object_id if item.type == "Reject" else None
        exchange = await node.store.find_exchange(offer_id=object_id, agreement_uri=agreement)
        if exchange is not None:
            return Subject(OFFER if object_id == exchange.offer_id else AGREEMENT, exchange)
    if item.type == "Undo":
        return await _undone(node, item, inner, object_id)
    if not isinstance(inner, dict):
        return Subject("")
    if has_type(inner, "Document") and inner.get("name") == "Receipt":
        return Subject(RECEIPT)
    if has_type(inner, "Agreement"):
        return Subject(AGREEMENT)
    if is_proposal(inner):
        return Subject(PROPOSAL)
    return Subject(first_type(inner))


async def _undone(
    node: NodeContext, item: InboxActivity, inner: object, inner_id: str | None
) -> Subject:
    """What an Undo undoes: only the actor of an activity may undo it."""
    if inner_id is None:
        raise Refused("no object")
    if isinstance(inner, dict):
        inner_actor = get_id(inner.get("actor"))
        if inner_actor is not None and inner_actor != item.actor:
            raise Refused("only the actor of an activity may undo it")
        return Subject(first_type(inner))
    if await node.store.get_follow_by_activity(inner_id) is not None:
        return Subject(FOLLOW)
    return Subject("")


def route(activity_type: str, subject: Subject) -> Handler | None:
    return ROUTES.get((activity_type, subject.kind)) or ROUTES.get((activity_type, ANY))


async def process_activity(node: NodeContext, item: InboxActivity) -> Outcome:
    # The one boundary: routing and handlers read every incoming shape as one
    # (federation/shapes.py).
    item = replace(item, body=normalise(item.body))
    try:
        subject = await subject_of(node, item)
        handler = route(item.type, subject)
        if handler is None:
            if item.type == "Undo":
                return ignored(f"Undo of {subject.kind}")
            return ignored(f"unsupported type {item.type}")
        return await handler(node, item, subject)
    except Refused as exc:
        log.warning(
            "refused %s %s from %s: %s", item.type, item.activity_id, item.actor, exc.reason
        )
        return refused(exc.reason)
    except FetchError as exc:
        if exc.temporary:
            raise RetryJob(str(exc)) from exc
        return failed(str(exc))
    except InvalidActor as exc:
        return failed(str(exc))
    except ActionError as exc:
        return failed(exc.detail)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Unexpected shapes from a remote server: record, never crash the worker.
        log.warning("malformed %s %s: %r", item.type, item.activity_id, exc)
        return failed(f"malformed activity ({type(exc).__name__})")


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
        await node.store.finish_inbox_activity(item.id, str(outcome))

    return process_inbox

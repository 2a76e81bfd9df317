"""Update of a Question: the author's new counts for a poll we hold.

Mastodon sends the Question again, without a newer ``updated``, each time its
counts change (and once it closes).  An Update with a newer ``updated`` is an
edit, handled as any post's; one without only replaces the poll's counts
(options' ``replies.totalItems``, ``votersCount``, ``closed``, ``endTime``).
"""

from __future__ import annotations

from federation.context import NodeContext
from federation.jsonld import get_id, parse_time
from federation.origins import same_origin
from federation.store import InboxActivity
from inbox.content import handle_update
from inbox.errors import Refused
from inbox.handling import Outcome, Subject, applied, ignored
from outbox.polls import parse_poll, poll_fields


async def handle_update_question(
    node: NodeContext, item: InboxActivity, subject: Subject
) -> Outcome:
    obj = item.body.get("object")
    object_id = get_id(obj)
    if not isinstance(obj, dict) or object_id is None:
        return await handle_update(node, item, subject)  # by id: fetched and checked there
    if not same_origin(object_id, item.actor):
        raise Refused("the object id is on another origin than its actor")
    stored = await node.store.get_object(object_id)
    if stored is None:
        return ignored("unknown object")
    if stored.attributed_to != item.actor:
        raise Refused("only the owner may update an object")
    updated = parse_time(obj.get("updated"))
    if updated is not None and (stored.updated is None or updated > stored.updated):
        return await handle_update(node, item, subject)  # an edit
    fields = poll_fields(obj)
    if parse_poll({"type": "Question", **fields}) is None:
        return ignored("no poll in the update")
    if not await node.store.refresh_poll(object_id, item.actor, fields):
        return ignored("not a poll")
    return applied("poll counts updated")

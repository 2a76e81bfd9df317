"""Polls: a ``Question`` of another server, read as a poll, and a member's vote.

A Question lists its options in ``oneOf`` (one choice) or ``anyOf`` (several),
each a ``Note`` whose ``name`` is the option and whose ``replies.totalItems`` is
its count; ``endTime`` (or ``closed``) ends it and ``votersCount`` counts voters.

A vote is what Mastodon sends: for each choice, a ``Create`` of a ``Note`` whose
``name`` is the option and ``inReplyTo`` the Question, addressed to the poll's
author only.  It is recorded (``poll_votes``) but not stored as a post, so it
shows in no timeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from federation.context import NodeContext
from federation.jsonld import has_type, parse_time
from federation.store import LocalActor, StoredObject
from outbox import build
from outbox.errors import ActionError, InvalidInput
from outbox.fanout import send_activity

MAX_OPTIONS = 20
MAX_TITLE = 200


@dataclass(frozen=True, slots=True)
class PollOption:
    title: str
    votes: int | None


@dataclass(frozen=True, slots=True)
class Poll:
    options: list[PollOption]
    multiple: bool
    ends_at: datetime | None
    closed: bool
    voters: int | None

    def expired(self, now: datetime) -> bool:
        return self.closed or (self.ends_at is not None and self.ends_at <= now)

    @property
    def votes(self) -> int:
        return sum(o.votes or 0 for o in self.options)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _options(raw: Any) -> list[PollOption]:
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    options = []
    for item in items[:MAX_OPTIONS]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        replies = item.get("replies")
        votes = _count(replies.get("totalItems")) if isinstance(replies, dict) else None
        options.append(PollOption(item["name"][:MAX_TITLE], votes))
    return options


def parse_poll(body: dict[str, Any]) -> Poll | None:
    """The poll of a stored Question, or None when it has no usable options."""
    if not has_type(body, "Question"):
        return None
    multiple = "anyOf" in body and "oneOf" not in body
    options = _options(body.get("anyOf") if multiple else body.get("oneOf"))
    if not options:
        return None
    closed = body.get("closed")
    ends_at = parse_time(body.get("endTime")) or parse_time(closed)
    return Poll(
        options=options,
        multiple=multiple,
        ends_at=ends_at,
        closed=closed is True or parse_time(closed) is not None,
        voters=_count(body.get("votersCount")),
    )


def poll_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What an Update of a Question may change without being an edit: the counts."""
    return {k: body[k] for k in ("oneOf", "anyOf", "votersCount", "closed", "endTime") if k in body}


def check_choices(poll: Poll, choices: Sequence[int], now: datetime) -> list[int]:
    """The choices, in order and once each; InvalidInput (422) says what is wrong."""
    if poll.expired(now):
        raise InvalidInput("choices", "The poll has already ended")
    if not choices:
        raise InvalidInput("choices", "Choose at least one option")
    wanted = sorted(set(choices))
    if any(c < 0 or c >= len(poll.options) for c in wanted):
        raise InvalidInput("choices", "Choice is not an option of this poll")
    if len(wanted) > 1 and not poll.multiple:
        raise InvalidInput("choices", "This poll allows only one choice")
    return wanted


async def vote(
    node: NodeContext, member: LocalActor, question: StoredObject, choices: Sequence[int]
) -> list[int]:
    """Record ``member``'s vote and send it to the poll's author; the choices made."""
    poll = parse_poll(question.body)
    if poll is None or question.deleted_at is not None:
        raise ActionError("not_found", "no poll here")
    actor_url = node.urls.actor(member.username)
    if question.attributed_to == actor_url:
        raise InvalidInput("choices", "You cannot vote in your own poll")
    wanted = check_choices(poll, choices, node.clock())
    tokens = [node.new_token() for _ in wanted]
    ids = [node.urls.activity(t) for t in tokens]
    if not await node.store.add_poll_votes(member.id, question.uri, wanted, ids):
        raise InvalidInput("choices", "You have already voted on this poll")
    for choice, token, activity_id in zip(wanted, tokens, ids, strict=True):
        note = {
            "id": f"{actor_url}#votes/{token}",
            "type": "Note",
            "name": poll.options[choice].title,
            "attributedTo": actor_url,
            "inReplyTo": question.uri,
            "to": [question.attributed_to],
            "cc": [],
        }
        create = build.build_create(
            activity_id=activity_id, actor=actor_url, obj=note, published=node.clock()
        )
        await send_activity(node, member, create)
    return wanted

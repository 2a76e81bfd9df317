"""What an inbox handler is given and what it returns.

A handler gets the activity and its ``Subject``: what the activity is about,
as ``inbox.dispatch`` found it (the object's kind, and the exchange it names).
It returns an ``Outcome``: what became of the activity.

The outcome is stored with the activity as text (``str(outcome)``) so that an
admin (and a test) can read it: ``"stored"``, ``"ignored: unknown object"``,
``"refused: only the owner may delete an object"``.  Code reads ``verdict``,
never the text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from federation.context import NodeContext
from federation.store import Exchange, InboxActivity

# The kinds of subject that are not an object's own type (``inbox.dispatch`` finds them).
ANY = "*"  # in a route: whatever the object is
PROPOSAL = "Proposal"  # an FEP-0837 proposal, whatever its first type
RECEIPT = "Receipt"  # the Document that completes an exchange
OFFER = "Offer"  # one of the exchange offers we sent or received, by its id
AGREEMENT = "Agreement"  # the agreement of an exchange
FOLLOW = "Follow"  # a follow, embedded or named by its id


@dataclass(frozen=True, slots=True)
class Subject:
    """What an activity is about: its object's kind, and the exchange it names, if any."""

    kind: str
    exchange: Exchange | None = None


class Verdict(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    text: str

    def __str__(self) -> str:
        return self.text if self.verdict is Verdict.APPLIED else f"{self.verdict}: {self.text}"

    @property
    def applied(self) -> bool:
        return self.verdict is Verdict.APPLIED


def applied(text: str) -> Outcome:
    return Outcome(Verdict.APPLIED, text)


def ignored(text: str) -> Outcome:
    return Outcome(Verdict.IGNORED, text)


def refused(reason: str) -> Outcome:
    return Outcome(Verdict.REFUSED, reason)


def failed(text: str) -> Outcome:
    return Outcome(Verdict.FAILED, text)


Handler = Callable[[NodeContext, InboxActivity, Subject], Awaitable[Outcome]]

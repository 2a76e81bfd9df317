"""The exchange between two coops, as a state machine both nodes run.

An exchange starts when a coop answers a proposal with ``Offer(Agreement)``.
Both nodes keep the same record and move it only along these transitions;
an event that is not allowed from the current state, or not by that party,
raises ``IllegalTransition`` and changes nothing.

    offered  --accept (proposer)------>  accepted
    offered  --reject (proposer)------>  rejected
    offered  --withdraw (responder)--->  withdrawn
    accepted --cancel (either)-------->  cancelled
    accepted --complete (proposer)---->  completed
"""

from __future__ import annotations

from dataclasses import dataclass

STATES = ("offered", "accepted", "rejected", "withdrawn", "cancelled", "completed")
FINAL_STATES = frozenset({"rejected", "withdrawn", "cancelled", "completed"})
ROLES = ("proposer", "responder")


@dataclass(frozen=True, slots=True)
class Transition:
    source: str
    event: str
    target: str
    by: frozenset[str]


TRANSITIONS: tuple[Transition, ...] = (
    Transition("offered", "accept", "accepted", frozenset({"proposer"})),
    Transition("offered", "reject", "rejected", frozenset({"proposer"})),
    Transition("offered", "withdraw", "withdrawn", frozenset({"responder"})),
    Transition("accepted", "cancel", "cancelled", frozenset({"proposer", "responder"})),
    Transition("accepted", "complete", "completed", frozenset({"proposer"})),
)
EVENTS = frozenset(t.event for t in TRANSITIONS)


def _validate() -> None:
    for t in TRANSITIONS:
        assert t.source in STATES and t.target in STATES, t
        assert t.source not in FINAL_STATES, f"{t.source} is final"
        assert t.by <= set(ROLES), t
    seen = {(t.source, t.event) for t in TRANSITIONS}
    assert len(seen) == len(TRANSITIONS), "one target per (state, event)"


_validate()


class IllegalTransition(Exception):
    """An event that the exchange's state or the party does not allow."""

    def __init__(self, state: str, event: str, by: str) -> None:
        super().__init__(f"{event} by the {by} is not allowed when the exchange is {state}")
        self.state = state
        self.event = event
        self.by = by


def next_state(state: str, event: str, by: str) -> str:
    """The state after ``event`` by party ``by``; raises IllegalTransition."""
    for t in TRANSITIONS:
        if t.source == state and t.event == event:
            if by not in t.by:
                break
            return t.target
    raise IllegalTransition(state, event, by)


def allowed_events(state: str, by: str) -> list[str]:
    return [t.event for t in TRANSITIONS if t.source == state and by in t.by]

"""The exchange state machine (federation/exchange.py), exhaustively.

The allowed transitions are spelled out here independently of ``TRANSITIONS``
(``federation.exchange``): every other (state, event, party) combination must
raise ``IllegalTransition`` and final states must have no way out.
"""

from __future__ import annotations

import itertools

import pytest

from federation.exchange import (
    EVENTS,
    FINAL_STATES,
    ROLES,
    STATES,
    IllegalTransition,
    allowed_events,
    next_state,
)

# (state, event, by) -> target: the whole machine, as the issue describes it.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("offered", "accept", "proposer"): "accepted",
    ("offered", "reject", "proposer"): "rejected",
    ("offered", "withdraw", "responder"): "withdrawn",
    ("accepted", "cancel", "proposer"): "cancelled",
    ("accepted", "cancel", "responder"): "cancelled",
    ("accepted", "complete", "proposer"): "completed",
}
ALL_COMBINATIONS = list(itertools.product(STATES, sorted(EVENTS), ROLES))
DISALLOWED = [c for c in ALL_COMBINATIONS if c not in ALLOWED]


def test_the_vocabulary_of_the_machine() -> None:
    assert STATES == ("offered", "accepted", "rejected", "withdrawn", "cancelled", "completed")
    assert EVENTS == {"accept", "reject", "withdraw", "cancel", "complete"}
    assert ROLES == ("proposer", "responder")
    assert FINAL_STATES == {"rejected", "withdrawn", "cancelled", "completed"}
    # 6 states x 5 events x 2 parties: 6 allowed, 54 refused.
    assert (len(ALL_COMBINATIONS), len(DISALLOWED)) == (60, 54)


@pytest.mark.parametrize(("state", "event", "by"), list(ALLOWED))
def test_allowed_transition(state: str, event: str, by: str) -> None:
    assert next_state(state, event, by) == ALLOWED[(state, event, by)]


@pytest.mark.parametrize(("state", "event", "by"), DISALLOWED)
def test_disallowed_transition_raises(state: str, event: str, by: str) -> None:
    with pytest.raises(IllegalTransition) as raised:
        next_state(state, event, by)
    assert (raised.value.state, raised.value.event, raised.value.by) == (state, event, by)
    assert str(raised.value) == f"{event} by the {by} is not allowed when the exchange is {state}"


@pytest.mark.parametrize("by", ROLES)
@pytest.mark.parametrize("state", sorted(FINAL_STATES))
def test_final_states_have_no_exits(state: str, by: str) -> None:
    assert allowed_events(state, by) == []
    for event in sorted(EVENTS):
        with pytest.raises(IllegalTransition):
            next_state(state, event, by)


def test_allowed_events_per_state_and_party() -> None:
    assert allowed_events("offered", "proposer") == ["accept", "reject"]
    assert allowed_events("offered", "responder") == ["withdraw"]
    assert allowed_events("accepted", "proposer") == ["cancel", "complete"]
    assert allowed_events("accepted", "responder") == ["cancel"]


@pytest.mark.parametrize(
    ("state", "event", "by"),
    [
        ("offered", "pledge", "proposer"),  # no such event
        ("offered", "accept", "stranger"),  # no such party
        ("open", "accept", "proposer"),  # no such state
    ],
)
def test_unknown_names_are_illegal_too(state: str, event: str, by: str) -> None:
    with pytest.raises(IllegalTransition):
        next_state(state, event, by)

"""What a domain action raises when it cannot be done, and the one status each maps to.

Every surface that runs an action (the C2S API, the admin pages, the client
API, the CLI) catches ``ActionError`` and answers with ``status_of`` it:

- ``InvalidInput``: input that cannot become what was asked; ``field`` names
  what to fix (422);
- ``ActionError`` whose ``reason`` names something that does not exist (404);
- any other ``ActionError``: the action conflicts with what is stored, such as
  a closed proposal or a step the exchange does not allow (409).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class ActionError(Exception):
    """An action that cannot be done: ``reason`` for machines, ``detail`` for people."""

    # What was asked is already so: a repeated command has nothing left to do.
    ALREADY_DONE = frozenset(
        {
            "already_following",
            "already_requested",
            "not_following",
            "already_accepted",
            "no_request",
            "already_suspended",
            "not_suspended",
            "already_removed",
        }
    )

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class InvalidInput(ActionError):
    """Input that cannot become what was asked; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("invalid_input", f"{field}: {message}")
        self.field = field
        self.message = message


NOT_FOUND = 404
CONFLICT = 409
UNPROCESSABLE = 422

STATUS_OF_REASON: Mapping[str, int] = MappingProxyType(
    {
        "invalid_input": UNPROCESSABLE,
        "not_found": NOT_FOUND,
        "unknown_actor": NOT_FOUND,
        "unknown_object": NOT_FOUND,
        "unknown_proposal": NOT_FOUND,
        "not_following": NOT_FOUND,
    }
)


def status_of(error: ActionError) -> int:
    """The HTTP status of ``error``: its reason's, else 409 (a conflict with the state)."""
    return STATUS_OF_REASON.get(error.reason, CONFLICT)

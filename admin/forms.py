"""Forms that name every invalid field at once.

A refused form comes back with all its errors next to their fields, not only
the first one a validator met.  ``FieldErrors`` carries them (an
``InvalidInput`` whose field and message are the first error, so every other
surface still reads it).  ``collect`` runs independent checks and gathers
what each refused; ``proposal_errors`` asks ``validate_spec`` again after
replacing each field it refused with a harmless value, until it accepts, so
the rules stay in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from outbox.errors import InvalidInput
from outbox.proposals import validate_spec


class FieldErrors(InvalidInput):
    """Several invalid fields: ``errors`` maps each field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        first_field, first_message = next(iter(errors.items()))
        super().__init__(first_field, first_message)
        self.errors = dict(errors)


def errors_of(exc: InvalidInput) -> dict[str, str]:
    """Every field error of ``exc`` (one, unless it is a ``FieldErrors``)."""
    return exc.errors if isinstance(exc, FieldErrors) else {exc.field: exc.message}


def collect(*checks: Callable[[], object]) -> dict[str, str]:
    """The errors of the checks that raise ``InvalidInput`` (each runs once)."""
    errors: dict[str, str] = {}
    for check in checks:
        try:
            check()
        except InvalidInput as exc:
            errors.setdefault(exc.field, exc.message)
    return errors


def raise_errors(errors: Mapping[str, str]) -> None:
    if errors:
        raise FieldErrors(errors)


def _placeholders(now: datetime) -> dict[str, Any]:
    """Values ``validate_spec`` accepts for any kind: stand-ins for refused fields."""
    return {
        "kind": "offer",
        "title": "-",
        "details": "",
        "action": None,
        "unit": "one",
        "quantity": "1",
        "price": None,
        "currency": "EUR",
        "deadline": (now + timedelta(days=1)).isoformat(),
        "tags": [],
        "resource": None,
    }


def proposal_errors(raw: Mapping[str, Any], *, now: datetime) -> dict[str, str]:
    """Every field of a proposal ``validate_spec`` refuses, with its message."""
    placeholders = _placeholders(now)
    trial = dict(raw)
    errors: dict[str, str] = {}
    for _ in range(len(placeholders) + 1):
        try:
            validate_spec(trial, now=now)
        except InvalidInput as exc:
            if exc.field in errors or exc.field not in placeholders:
                errors.setdefault(exc.field, exc.message)
                break
            errors[exc.field] = exc.message
            trial[exc.field] = placeholders[exc.field]
        else:
            break
    return errors


def check_length(name: str, value: str, limit: int, *, required: bool = False) -> None:
    if required and not value.strip():
        raise InvalidInput(name, "is required")
    if len(value) > limit:
        raise InvalidInput(name, f"is longer than {limit} characters")

"""What an inbox handler raises when a verified peer asks for something illegal."""

from __future__ import annotations


class Refused(Exception):
    """The activity is refused and logged, never applied."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

"""In-process counters of what the node did (exported by ``coopfed status``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Metrics:
    inbox_accepted: int = 0
    inbox_rejected: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)
    deliveries_queued: int = 0

    def count_delivery(self, outcome: str) -> None:
        self.deliveries[outcome] = self.deliveries.get(outcome, 0) + 1

    def count_rejection(self, reason: str) -> None:
        self.inbox_rejected[reason] = self.inbox_rejected.get(reason, 0) + 1

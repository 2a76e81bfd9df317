"""What the node did and how it stands, for ``GET /metrics`` (Prometheus text 0.0.4).

``Metrics`` holds in-process counters (on ``NodeContext.metrics``): they count
what *this* process did since it started, so a separate ``coopfed worker``
process counts its deliveries in its own memory, not in the web process's.
The gauges (queue depth, failing hosts, followers) come from the database and
are the same from every process.

``render_metrics`` is pure: counters and gauges in, exposition text out;
``coopfed/probes.py`` serves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Label values always present (0 until counted), so that rate() sees a series
# from the first scrape on.  Others appear once counted.
DELIVERY_OUTCOMES = ("blocked", "delivered", "permanent", "retry", "skipped")
JOB_KINDS = ("close_proposal", "deliver", "process_inbox")


@dataclass(slots=True)
class Metrics:
    inbox_accepted: int = 0
    inbox_rejected: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)
    deliveries_queued: int = 0
    jobs_retried: dict[str, int] = field(default_factory=dict)

    def count_delivery(self, outcome: str) -> None:
        self.deliveries[outcome] = self.deliveries.get(outcome, 0) + 1

    def count_rejection(self, reason: str) -> None:
        self.inbox_rejected[reason] = self.inbox_rejected.get(reason, 0) + 1

    def count_retry(self, kind: str) -> None:
        self.jobs_retried[kind] = self.jobs_retried.get(kind, 0) + 1


@dataclass(frozen=True, slots=True)
class Gauges:
    """The node's state as the database holds it (``Store.operations_gauges``)."""

    queue_depth: Mapping[str, int]
    failed_jobs: Mapping[str, int]
    unavailable_hosts: int
    failing_hosts: int
    followers: int
    following: int


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: int, label: str | None = None, key: str = "") -> None:
        labels = f'{{{label}="{escape_label(key)}"}}' if label else ""
        self.lines.append(f"{name}{labels} {value}")

    def by_label(
        self,
        name: str,
        kind: str,
        help_text: str,
        label: str,
        values: Mapping[str, int],
        always: Iterable[str] = (),
    ) -> None:
        self.family(name, kind, help_text)
        for key in sorted(set(values) | set(always)):
            self.sample(name, values.get(key, 0), label, key)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_metrics(metrics: Metrics, gauges: Gauges) -> str:
    """The Prometheus text exposition (format 0.0.4) of counters and gauges."""
    out = _Exposition()
    out.family(
        "coopfed_inbox_accepted_total",
        "counter",
        "Activities the inbox verified and stored (this process).",
    )
    out.sample("coopfed_inbox_accepted_total", metrics.inbox_accepted)
    out.by_label(
        "coopfed_inbox_rejected_total",
        "counter",
        "Requests the inbox or a domain block refused, by reason.",
        "reason",
        metrics.inbox_rejected,
    )
    out.by_label(
        "coopfed_deliveries_total",
        "counter",
        "Delivery attempts by outcome (this process's workers).",
        "outcome",
        metrics.deliveries,
        DELIVERY_OUTCOMES,
    )
    out.family(
        "coopfed_deliveries_queued_total",
        "counter",
        "Deliveries queued by this process (one per inbox).",
    )
    out.sample("coopfed_deliveries_queued_total", metrics.deliveries_queued)
    out.by_label(
        "coopfed_jobs_retried_total",
        "counter",
        "Failed jobs scheduled again, by kind (this process's workers).",
        "kind",
        metrics.jobs_retried,
        JOB_KINDS,
    )
    out.by_label(
        "coopfed_queue_depth",
        "gauge",
        "Jobs in the queue (due or waiting to retry), by kind.",
        "kind",
        gauges.queue_depth,
        JOB_KINDS,
    )
    out.by_label(
        "coopfed_failed_jobs",
        "gauge",
        "Jobs given up and kept in failed_jobs, by kind.",
        "kind",
        gauges.failed_jobs,
        JOB_KINDS,
    )
    for name, value, help_text in (
        (
            "coopfed_unavailable_hosts",
            gauges.unavailable_hosts,
            "Hosts skipped after failing on too many days, until they revive.",
        ),
        (
            "coopfed_failing_hosts",
            gauges.failing_hosts,
            "Hosts failing since their last success (unavailable ones too).",
        ),
        ("coopfed_followers", gauges.followers, "Accepted followers of the node's actors."),
        ("coopfed_following", gauges.following, "Accepted follows of the node's actors."),
    ):
        out.family(name, "gauge", help_text)
        out.sample(name, value)
    return out.text()

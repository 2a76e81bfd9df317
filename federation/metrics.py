"""What the node did and how it stands, for ``GET /metrics`` (Prometheus text 0.0.4).

``Metrics`` holds in-process counters (on ``NodeContext.metrics``): they count
what *this* process did since it started, so a separate ``coopfed worker``
process counts its deliveries in its own memory, not in the web process's.
The gauges (queue depth, failing hosts, followers) come from the database and
are the same from every process.

``render_metrics`` is pure: counters and gauges in, exposition text out (written
by prometheus-client, whose own registry is not used: each scrape renders a snapshot);
``coopfed/probes.py`` serves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

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


Family = CounterMetricFamily | GaugeMetricFamily


def _by_label(family: Family, values: Mapping[str, int], always: Iterable[str] = ()) -> Family:
    for key in sorted(set(values) | set(always)):
        family.add_metric([key], values.get(key, 0))
    return family


class _Snapshot(Collector):
    """One scrape's worth of counters and gauges, as prometheus-client families."""

    def __init__(self, metrics: Metrics, gauges: Gauges) -> None:
        self.metrics = metrics
        self.gauges = gauges

    def collect(self) -> Iterator[Family]:
        m, g = self.metrics, self.gauges
        yield CounterMetricFamily(
            "coopfed_inbox_accepted",
            "Activities the inbox verified and stored (this process).",
            value=m.inbox_accepted,
        )
        yield _by_label(
            CounterMetricFamily(
                "coopfed_inbox_rejected",
                "Requests the inbox or a domain block refused, by reason.",
                labels=["reason"],
            ),
            m.inbox_rejected,
        )
        yield _by_label(
            CounterMetricFamily(
                "coopfed_deliveries",
                "Delivery attempts by outcome (this process's workers).",
                labels=["outcome"],
            ),
            m.deliveries,
            DELIVERY_OUTCOMES,
        )
        yield CounterMetricFamily(
            "coopfed_deliveries_queued",
            "Deliveries queued by this process (one per inbox).",
            value=m.deliveries_queued,
        )
        yield _by_label(
            CounterMetricFamily(
                "coopfed_jobs_retried",
                "Failed jobs scheduled again, by kind (this process's workers).",
                labels=["kind"],
            ),
            m.jobs_retried,
            JOB_KINDS,
        )
        yield _by_label(
            GaugeMetricFamily(
                "coopfed_queue_depth",
                "Jobs in the queue (due or waiting to retry), by kind.",
                labels=["kind"],
            ),
            g.queue_depth,
            JOB_KINDS,
        )
        yield _by_label(
            GaugeMetricFamily(
                "coopfed_failed_jobs",
                "Jobs given up and kept in failed_jobs, by kind.",
                labels=["kind"],
            ),
            g.failed_jobs,
            JOB_KINDS,
        )
        for name, value, help_text in (
            (
                "coopfed_unavailable_hosts",
                g.unavailable_hosts,
                "Hosts skipped after failing on too many days, until they revive.",
            ),
            (
                "coopfed_failing_hosts",
                g.failing_hosts,
                "Hosts failing since their last success (unavailable ones too).",
            ),
            ("coopfed_followers", g.followers, "Accepted followers of the node's actors."),
            ("coopfed_following", g.following, "Accepted follows of the node's actors."),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)


def render_metrics(metrics: Metrics, gauges: Gauges) -> str:
    """The Prometheus text exposition (format 0.0.4) of counters and gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(metrics, gauges))
    return generate_latest(registry).decode()

"""Prometheus metrics of the stream worker (one registry, bounded labels)."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from vhc_common.schemas import AlertKind, Severity
from vhc_common.topics import ALERTS, DECLARATIONS

__all__ = ["BatchHistogram", "WorkerMetrics"]


class BatchHistogram(Histogram):
    """A histogram that also takes a batch's observations at once: ``observe`` per record
    walks the buckets in Python and takes a lock per call (a replay's lags of days walk
    nearly all of them), 2-3 % of the worker; ``observe_many`` finds each value's bucket
    by bisection and adds to each bucket and the sum once. The same series as observing
    one by one (``tests/unit/test_batch_histogram.py``)."""

    def observe_many(self, amounts: Sequence[float]) -> None:
        self._raise_if_not_observable()  # type: ignore[no-untyped-call]
        if not amounts:
            return
        bounds = self._upper_bounds
        for index, n in Tally(bisect_left(bounds, a) for a in amounts).items():
            self._buckets[index].inc(n)  # the first bucket whose bound is >= the amount
        self._sum.inc(sum(amounts))


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.records = Counter(
            "vhc_worker_records_total",
            "Input records handled, by topic and outcome "
            "(counted, duplicate, beyond_horizon, dead_letter).",
            ["topic", "outcome"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "vhc_worker_dead_letters_total",
            "Records sent to the dead-letter topic, by source topic.",
            ["topic"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "vhc_worker_alerts_total",
            "Alerts emitted to alerts.v1, by kind and severity (a replay may emit an id "
            "again).",
            ["kind", "severity"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "vhc_worker_consumer_lag_records",
            "Records on an assigned input partition not yet processed by this worker "
            "(high watermark minus the next offset to process).",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.event_time_lag = BatchHistogram(
            "vhc_worker_event_time_lag_seconds",
            "Wall-clock time from scanned_at (event time) to processing: late front ends "
            "and replays show here.",
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86_400, 7 * 86_400),
            registry=self.registry,
        )
        self.ward_declarations = Counter(
            "vhc_ward_declarations_total",
            "Declarations counted, by ward (wards are bounded: the official list).",
            ["ward_code"],
            registry=self.registry,
        )
        self.ward_symptomatic = Counter(
            "vhc_ward_symptomatic_declarations_total",
            "Symptomatic declarations counted (at least one symptom, fever included), by ward.",
            ["ward_code"],
            registry=self.registry,
        )
        self.outbox_resent = Counter(
            "vhc_worker_outbox_resent_total",
            "Alerts and ward summaries sent again from a stored outbox after a restart or "
            "rebalance (they may have been delivered before).",
            registry=self.registry,
        )
        self.redis_retries = Counter(
            "vhc_worker_redis_retries_total",
            "Redis writes of the views retried because Redis was unavailable.",
            registry=self.registry,
        )
        self.redis_rebuilds = Counter(
            "vhc_worker_redis_rebuilds_total",
            "Times this worker found Redis without its data (or new) and put its views back.",
            registry=self.registry,
        )
        self.offset_gaps = Counter(
            "vhc_worker_offset_gaps_total",
            "Input records found skipped by the consumer (streams.offsets), by topic and "
            "outcome: rewound (sought back to the first missing offset), lost (deleted "
            "by retention before they were read) or stalled (records waiting on a "
            "partition that delivered nothing for a while: sought back to the next one).",
            ["topic", "outcome"],
            registry=self.registry,
        )
        self.commit_repairs = Counter(
            "vhc_worker_commit_repairs_total",
            "Partitions whose consumer-group commit had stopped below what the worker had "
            "processed for a while, committed by the worker (streams.faust_fixes).",
            ["topic"],
            registry=self.registry,
        )
        self.late_after_close = Counter(
            "vhc_worker_late_after_close_total",
            "Declarations for an hour the baseline detectors had already judged.",
            registry=self.registry,
        )
        self.ticks_held = Counter(
            "vhc_worker_ticks_held_total",
            "Wall-clock ticks that moved a partition's live clock only as far as the "
            "records processed, because more of them were waiting (Pipeline.tick).",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "vhc_worker_batch_records",
            "Records per processed batch.",
            buckets=(1, 5, 20, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "vhc_worker_batch_duration_seconds",
            "Time to process one batch, tables and Redis view included.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.event_lag = BatchHistogram(
            "vhc_worker_event_lag_seconds",
            "Wall-clock time from ingest (received_at) to processing.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self._initialise()

    def _initialise(self) -> None:
        """Known label values start at 0 (an absent series is not a zero)."""
        for kind in AlertKind:
            for severity in Severity:
                self.alerts.labels(kind.value, severity.value)
        for topic in (DECLARATIONS, ALERTS):
            self.dead_letters.labels(topic)
        for outcome in ("counted", "duplicate", "beyond_horizon", "dead_letter"):
            self.records.labels(DECLARATIONS, outcome)

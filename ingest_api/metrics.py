"""Prometheus metrics of the API process (one registry, bounded labels)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from vhc_common.topics import (
    ALERT_STATUS,
    ALERTS,
    AUDIT,
    CASES,
    CHECKPOINTS,
    DECLARATIONS,
    OUTBREAK_AREAS,
)

__all__ = ["ApiMetrics"]


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.declarations = Counter(
            "vhc_ingest_declarations_total",
            "Declarations received, by outcome "
            "(accepted, duplicate, invalid, unavailable, in_progress).",
            ["outcome"],
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "vhc_ingest_publish_duration_seconds",
            "Time from send to broker acknowledgement.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.requests = Counter(
            "vhc_api_requests_total",
            "HTTP requests, by route template, method and status class.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "vhc_api_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.rejected = Counter(
            "vhc_api_rejected_total",
            "Requests refused, by reason (unauthorized, forbidden, rate_limited, too_large, "
            "too_many_streams).",
            ["reason"],
            registry=self.registry,
        )
        self.publish_errors = Counter(
            "vhc_ingest_publish_errors_total",
            "Messages the broker did not acknowledge in time, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.dependency_errors = Counter(
            "vhc_api_dependency_errors_total",
            "Requests answered 503 because a dependency failed, by dependency (kafka, redis; "
            "worker: a case look-up the stream worker had not caught up with).",
            ["dependency"],
            registry=self.registry,
        )
        self.redis_rebuilds = Counter(
            "vhc_api_redis_rebuilds_total",
            "Times Redis had lost its data and the API put its views back from Kafka.",
            registry=self.registry,
        )
        self.alerts = Counter(
            "vhc_api_alerts_total",
            "Alerts raised by the API itself (exposure, naming_violation), by kind and "
            "severity.",
            ["kind", "severity"],
            registry=self.registry,
        )
        self.sse_clients = Gauge(
            "vhc_api_sse_clients",
            "Alert streams (Server-Sent Events) open in this process.",
            registry=self.registry,
        )
        # Surveillance, refreshed every 30 s from the registry and the alerts' view
        # (ingest_api.surveillance); every API process exports the same values: use max().
        self.ward_checkpoints = Gauge(
            "vhc_ward_checkpoints",
            "Checkpoints per ward by state: registered, active (a declaration in the last "
            "hour), silent (an open checkpoint_silent alert), under_used (yesterday), "
            "misnamed (against the naming convention).",
            ["ward_code", "state"],
            registry=self.registry,
        )
        self.alerts_open = Gauge(
            "vhc_alerts_open",
            "Alerts not yet resolved, by severity and status (open, acknowledged).",
            ["severity", "status"],
            registry=self.registry,
        )
        self.oldest_unacknowledged = Gauge(
            "vhc_alerts_oldest_unacknowledged_seconds",
            "Age of the oldest alert still open (not acknowledged), by severity; 0 if none.",
            ["severity"],
            registry=self.registry,
        )
        self.surveillance_refreshed = Gauge(
            "vhc_surveillance_refreshed_timestamp_seconds",
            "When the surveillance gauges were last computed (unix time).",
            registry=self.registry,
        )
        self._initialise()

    def _initialise(self) -> None:
        """Known label values start at 0, so dashboards and rate() see them before the
        first event (an absent series is not a zero)."""
        for outcome in ("accepted", "duplicate", "invalid", "forbidden", "unavailable",
                        "in_progress"):
            self.declarations.labels(outcome)
        for reason in ("unauthorized", "forbidden", "rate_limited", "too_large",
                       "too_many_streams"):
            self.rejected.labels(reason)
        for topic in (DECLARATIONS, CHECKPOINTS, ALERTS, ALERT_STATUS, AUDIT, CASES,
                      OUTBREAK_AREAS):
            self.publish_errors.labels(topic)
        for dependency in ("kafka", "redis", "worker"):
            self.dependency_errors.labels(dependency)
        for kind in ("exposure", "naming_violation"):
            for severity in ("info", "warning", "critical"):
                self.alerts.labels(kind, severity)

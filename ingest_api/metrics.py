"""Prometheus metrics of the API process (one registry, bounded labels)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

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
            "Requests refused before routing, by reason (unauthorized, rate_limited, too_large).",
            ["reason"],
            registry=self.registry,
        )

"""Kafka topic names and specifications (versioned: a breaking change is a new name)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALERTS",
    "ALERT_STATUS",
    "AUDIT",
    "CASES",
    "CHECKPOINTS",
    "DEADLETTER",
    "DECLARATIONS",
    "OUTBREAK_AREAS",
    "TopicSpec",
    "topic_specs",
]

DECLARATIONS = "declarations.v1"
CHECKPOINTS = "checkpoints.v1"
ALERTS = "alerts.v1"
OUTBREAK_AREAS = "outbreak-areas.v1"
DEADLETTER = "deadletter.v1"
CASES = "cases.v1"
ALERT_STATUS = "alert-status.v1"
AUDIT = "audit.v1"

DAY_MS = 86_400_000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(*, partitions: int, retention_days: int) -> list[TopicSpec]:
    """Every topic vhc-watch writes, with its retention.

    Records that may carry personal data (declarations, alerts with declaration ids,
    dead letters) are deleted after ``retention_days``; the registry and the outbreak-area
    list are compacted state without personal data.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    if retention_days < 1:
        raise ValueError(f"retention_days must be >= 1, got {retention_days}")
    retention = {"retention.ms": str(retention_days * DAY_MS), "cleanup.policy": "delete"}
    compacted = {"cleanup.policy": "compact"}
    return [
        TopicSpec(DECLARATIONS, partitions, retention),
        TopicSpec(ALERTS, partitions, retention),
        TopicSpec(DEADLETTER, 1, retention),
        TopicSpec(CASES, 1, retention),
        # The lifecycle of each alert (key: alert id); deleted with the alerts it follows.
        TopicSpec(ALERT_STATUS, 1, retention),
        # Who did what (staff actions); kept as long as what they acted on.
        TopicSpec(AUDIT, 1, retention),
        TopicSpec(CHECKPOINTS, 1, compacted),
        TopicSpec(OUTBREAK_AREAS, 1, compacted),
    ]

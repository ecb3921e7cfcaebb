"""Redis key names: the one place that spells them, for the API and the worker."""

from __future__ import annotations

__all__ = [
    "checkpoint",
    "checkpoint_index",
    "declaration_seen",
    "stats_bucket",
    "stats_last",
    "worker_heartbeat",
]

PREFIX = "vhc:"


def declaration_seen(declaration_id: str) -> str:
    """Set once a declaration is durably in Kafka (idempotency of ingest)."""
    return f"{PREFIX}decl:{declaration_id}"


def checkpoint(checkpoint_id: str) -> str:
    return f"{PREFIX}checkpoint:{checkpoint_id}"


def checkpoint_index() -> str:
    """Sorted set of registered checkpoint ids (score 0, lexicographic order)."""
    return f"{PREFIX}checkpoints"


def stats_bucket(checkpoint_id: str, hour: int) -> str:
    """One event-time hour of counted declarations for a checkpoint (packed bytes)."""
    return f"{PREFIX}stats:{checkpoint_id}:{hour}"


def stats_last(checkpoint_id: str) -> str:
    """Newest ``scanned_at`` (epoch ms) seen for a checkpoint."""
    return f"{PREFIX}stats:{checkpoint_id}:last"


def worker_heartbeat() -> str:
    """Exists (with a short TTL) while a worker is consuming."""
    return f"{PREFIX}worker:heartbeat"

"""Redis key names: the one place that spells them, for the API and the worker."""

from __future__ import annotations

__all__ = [
    "as_text",
    "audit",
    "checkpoint",
    "checkpoint_index",
    "checkpoint_names",
    "checkpoint_places",
    "daily_totals",
    "declaration_seen",
    "exposure_indexed",
    "instance_marker",
    "outbreak_areas",
    "processed_offsets",
    "restored_marker",
    "stats_bucket",
    "stats_last",
    "visits_at",
    "visits_of_person",
    "worker_heartbeat",
]

PREFIX = "vhc:"


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (clients answer bytes unless told to decode)."""
    return value.decode() if isinstance(value, bytes) else value


def declaration_seen(declaration_id: str) -> str:
    """Set once a declaration is durably in Kafka (idempotency of ingest)."""
    return f"{PREFIX}decl:{declaration_id}"


def checkpoint(checkpoint_id: str) -> str:
    return f"{PREFIX}checkpoint:{checkpoint_id}"


def checkpoint_index() -> str:
    """Sorted set of registered checkpoint ids (score 0, lexicographic order)."""
    return f"{PREFIX}checkpoints"


def checkpoint_names() -> str:
    """Hash: folded checkpoint name (``detectors.naming.fold``) -> checkpoint id, for
    near-duplicate names."""
    return f"{PREFIX}checkpoints:names"


def checkpoint_places() -> str:
    """Hash: checkpoint id -> ``<province code>:<ward code>``, for the area check of scoped
    front-end keys inside the ingest claim script."""
    return f"{PREFIX}checkpoints:places"


def instance_marker(name: str) -> str:
    """A key without expiry whose absence tells that Redis lost its data
    (``vhc_common.redis_loss``)."""
    return f"{PREFIX}instance:{name}"


def restored_marker(role: str) -> str:
    """Set once ``role``'s views are in place in this Redis (``vhc_common.redis_loss``)."""
    return f"{PREFIX}restored:{role}"


def audit(target_type: str, target_id: str) -> str:
    """List of audit records (JSON, newest first) of one alert, checkpoint or list."""
    return f"{PREFIX}audit:{target_type}:{target_id}"


def stats_bucket(checkpoint_id: str, hour: int) -> str:
    """One event-time hour of counted declarations for a checkpoint (packed bytes)."""
    return f"{PREFIX}stats:{checkpoint_id}:{hour}"


def stats_last(checkpoint_id: str) -> str:
    """Newest ``scanned_at`` (epoch ms) seen for a checkpoint."""
    return f"{PREFIX}stats:{checkpoint_id}:last"


def visits_of_person(person_key: str) -> str:
    """Sorted set of ``<checkpoint>|<declaration id>`` by ``scanned_at`` (ms): a person's
    check-ins, under each of the person's keys."""
    return f"{PREFIX}visits:person:{person_key}"


def visits_at(checkpoint_id: str) -> str:
    """Sorted set of ``<person key>|<declaration id>`` by ``scanned_at`` (ms)."""
    return f"{PREFIX}visits:checkpoint:{checkpoint_id}"


def processed_offsets() -> str:
    """Hash: ``declarations.v1`` partition -> next offset the worker has not yet applied."""
    return f"{PREFIX}worker:offsets"


def exposure_indexed() -> str:
    """Hash: ``declarations.v1`` partition -> ``1`` once the exposure index holds every
    declaration of the partition below its processed offset: set by the worker that
    replayed what no live batch wrote (after a Redis loss, at a first start, after an
    owner that had not finished its replay), gone with a Redis loss. The case look-up
    waits for it as for the processed offsets."""
    return f"{PREFIX}worker:exposure-indexed"


def alert_view_offsets() -> str:
    """Hash: ``alerts.v1`` partition -> next offset the alerts' view has not yet stored."""
    return f"{PREFIX}worker:alert-offsets"


def outbreak_areas() -> str:
    """The current outbreak-area list (JSON), written after each change."""
    return f"{PREFIX}outbreak-areas"


def daily_totals(local_date: str) -> str:
    """Hash: checkpoint id -> declarations on that local (UTC+7) date, ``YYYY-MM-DD``."""
    return f"{PREFIX}daily:{local_date}"


def worker_heartbeat() -> str:
    """Exists (with a short TTL) while a worker is consuming."""
    return f"{PREFIX}worker:heartbeat"

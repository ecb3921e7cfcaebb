"""Live per-checkpoint statistics (staff)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from detectors.counts import hours_overlapping, window_counts
from ingest_api.deps import ServicesDep, Staff, visible_checkpoint
from ingest_api.models import StatsOut, WindowStats

router = APIRouter(prefix="/v1/checkpoints", tags=["stats"])

WINDOWS_MS = {"5m": 5 * 60_000, "1h": 3_600_000, "24h": 86_400_000}


@router.get("/{checkpoint_id}/stats", response_model=StatsOut, responses={403: {}, 404: {}})
async def checkpoint_stats(checkpoint_id: str, services: ServicesDep, who: Staff) -> StatsOut:
    """Counts over sliding windows of scanned_at ending now (5 minutes, 1 hour, 24 hours)."""
    await visible_checkpoint(services, who, checkpoint_id)
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    hours = hours_overlapping(end_ms=now_ms, window_ms=max(WINDOWS_MS.values()))
    last_ms, buckets = await services.stats.buckets(checkpoint_id, hours)
    windows = {
        name: WindowStats(**vars_of(window_counts(buckets, end_ms=now_ms, window_ms=ms)))
        for name, ms in WINDOWS_MS.items()
    }
    last = datetime.fromtimestamp(last_ms / 1000, UTC) if last_ms is not None else None
    return StatsOut(checkpoint_id=checkpoint_id, last_declaration_at=last, as_of=now,
                    windows=windows)


def vars_of(counts: object) -> dict[str, int]:
    return {name: getattr(counts, name) for name in WindowStats.model_fields}

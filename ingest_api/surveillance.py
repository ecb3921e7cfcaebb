"""Surveillance gauges for Prometheus, recomputed every 30 s in each API process.

Per ward (wards are bounded; checkpoint ids never become labels): checkpoints
registered, active (a declaration scanned in the last hour), silent (an unresolved
``checkpoint_silent`` alert), under-used (yesterday, ``detectors.underuse``) and misnamed.
Alerts not yet resolved by severity and status, and the age of the oldest one still
open, so a rule can page when a critical alert waits unacknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError

from detectors.underuse import under_used
from ingest_api.errors import IngestApiError
from ingest_api.metrics import ApiMetrics
from ingest_api.store import CheckpointStore, StatsStore, checkpoint_days
from vhc_common.alert_view import AlertView
from vhc_common.timebase import LOCAL_OFFSET

__all__ = ["refresh", "run"]

log = logging.getLogger(__name__)

REFRESH_S = 30.0
ALERT_SCAN_MAX = 10_000
STATES = ("registered", "active", "silent", "under_used", "misnamed")
SEVERITIES = ("info", "warning", "critical")


async def refresh(*, metrics: ApiMetrics, stats: StatsStore, checkpoints: CheckpointStore,
                  alerts: AlertView, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    registry = await checkpoints.all()
    lasts = await stats.last_seen([cp.checkpoint_id for cp in registry])
    yesterday = (now + LOCAL_OFFSET).date() - timedelta(days=1)
    totals = await stats.daily_totals(yesterday)
    flagged = {u.checkpoint_id for u in under_used(checkpoint_days(registry, totals))}

    silent: set[str] = set()
    open_counts: Counter[tuple[str, str]] = Counter()
    oldest: dict[str, float] = dict.fromkeys(SEVERITIES, 0.0)
    before, scanned = None, 0
    while scanned < ALERT_SCAN_MAX:
        page = await alerts.page(before_seq=before, batch=500)
        if not page:
            break
        for seq, alert in page:
            before, scanned = seq, scanned + 1
            if not alert or alert["status"] == "resolved":
                continue
            open_counts[(alert["severity"], alert["status"])] += 1
            if alert["kind"] == "checkpoint_silent" and alert.get("checkpoint_id"):
                silent.add(alert["checkpoint_id"])
            if alert["status"] == "open":
                age = (now - datetime.fromisoformat(alert["detected_at"])).total_seconds()
                oldest[alert["severity"]] = max(oldest[alert["severity"]], age)

    hour_ago_ms = (now.timestamp() - 3600) * 1000
    wards: dict[str, Counter[str]] = {}
    for cp, last in zip(registry, lasts, strict=True):
        c = wards.setdefault(cp.ward_code, Counter())
        c["registered"] += 1
        c["active"] += last is not None and last >= hour_ago_ms
        c["silent"] += cp.checkpoint_id in silent
        c["under_used"] += cp.checkpoint_id in flagged
        c["misnamed"] += cp.naming is not None and not cp.naming.conforms

    # No await from here on: a scrape sees the old values or the new, never a half.
    metrics.ward_checkpoints.clear()
    for ward, counts in wards.items():
        for state in STATES:
            metrics.ward_checkpoints.labels(ward, state).set(counts[state])
    for severity in SEVERITIES:
        for status in ("open", "acknowledged"):
            metrics.alerts_open.labels(severity, status).set(open_counts[(severity, status)])
        metrics.oldest_unacknowledged.labels(severity).set(round(oldest[severity], 1))
    metrics.surveillance_refreshed.set(time.time())


async def run(*, metrics: ApiMetrics, stats: StatsStore, checkpoints: CheckpointStore,
              alerts: AlertView, interval_s: float = REFRESH_S) -> None:
    """Refresh for ever; a failed round is logged and counted, the next one tries again."""
    while True:
        try:
            await refresh(metrics=metrics, stats=stats, checkpoints=checkpoints, alerts=alerts)
        except (RedisError, IngestApiError) as exc:
            metrics.dependency_errors.labels("redis").inc()
            log.warning("surveillance gauges not refreshed: %s", exc)
        await asyncio.sleep(interval_s)

"""Rebuild the alerts' Redis view from Kafka: ``python -m streams.rebuild_alerts``.

Reads ``alerts.v1`` (detections) and then ``alert-status.v1`` (staff changes) from the
beginning and puts back whatever the view lacks: a new Redis, a flushed one, or another
region. Inserting is idempotent by alert id, so running it on a complete view changes
nothing. Settings as for the worker (``VHC_KAFKA_BOOTSTRAP``, ``VHC_REDIS_URL``, ...).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping

from pydantic import ValidationError
from redis.asyncio import Redis

from streams.config import WorkerSettings
from vhc_common.alert_view import AlertView
from vhc_common.kafka_replay import replay_topic
from vhc_common.schemas import AlertEvent, AlertStatusEvent
from vhc_common.topics import ALERT_STATUS, ALERTS, topic_specs

__all__ = ["rebuild"]

log = logging.getLogger("vhc.rebuild_alerts")


async def rebuild(settings: WorkerSettings, *,
                  alerts_upto: Mapping[int, int] | None = None) -> tuple[int, int, int]:
    """``(alerts read, alerts added, statuses applied)``; ``alerts_upto`` (partition ->
    offset) limits the alerts read to those partitions, below those offsets."""
    specs = {s.name: s.partitions for s in topic_specs(
        partitions=settings.partitions, retention_days=settings.retention_days)}
    redis = Redis.from_url(settings.redis_url)
    view = AlertView(redis, retention_s=settings.retention_days * 86_400)
    added = applied = 0

    async def alert(value: bytes) -> None:
        nonlocal added
        try:
            added += await view.insert(AlertEvent.model_validate_json(value))
        except ValidationError as exc:
            log.error("skipping a bad %s record: %s", ALERTS, exc)

    async def status(value: bytes) -> None:
        nonlocal applied
        try:
            change = AlertStatusEvent.model_validate_json(value)
        except ValidationError as exc:
            log.error("skipping a bad %s record: %s", ALERT_STATUS, exc)
            return
        applied += await view.restore_status(change.alert_id, change.status,
                                             [dict(h) for h in change.history])

    try:
        read = await replay_topic(settings.kafka_bootstrap, ALERTS, specs[ALERTS], alert,
                                  upto=alerts_upto)
        await replay_topic(settings.kafka_bootstrap, ALERT_STATUS, specs[ALERT_STATUS], status)
    finally:
        await redis.aclose()
    return read, added, applied


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = WorkerSettings()
    except ValidationError as exc:
        sys.exit(f"rebuild_alerts: invalid settings:\n{exc}")
    read, added, applied = asyncio.run(rebuild(settings))
    log.info("read %d alerts, added %d missing ones, applied %d statuses", read, added, applied)
    return 0


if __name__ == "__main__":
    sys.exit(main())

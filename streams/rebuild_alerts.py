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
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from redis.asyncio import Redis

from streams.config import WorkerSettings
from vhc_common.alert_view import AlertView
from vhc_common.schemas import AlertEvent, AlertStatusEvent
from vhc_common.topics import ALERT_STATUS, ALERTS, topic_specs

__all__ = ["rebuild"]

log = logging.getLogger("vhc.rebuild_alerts")


async def _replay(bootstrap: str, topic: str, partitions: int,
                  handle: Callable[[bytes], Awaitable[None]]) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        seen = 0
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    if record.value is not None:
                        await handle(record.value)
                        seen += 1
        return seen
    finally:
        await consumer.stop()


async def rebuild(settings: WorkerSettings) -> tuple[int, int, int]:
    """``(alerts read, alerts added, statuses applied)``."""
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
        read = await _replay(settings.kafka_bootstrap, ALERTS, specs[ALERTS], alert)
        await _replay(settings.kafka_bootstrap, ALERT_STATUS, specs[ALERT_STATUS], status)
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

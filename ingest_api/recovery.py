"""Putting back the API's Redis views from Kafka, at start and whenever Redis lost its
data (``vhc_common.redis_loss``): the checkpoint registry (with the naming index) and the
outbreak-area list in force. While the registry is being put back, declarations for a
checkpoint the view does not know yet get 503 (retry), not 422. The stream worker puts
back the views it owns (statistics, the exposure index, the alert view)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from aiokafka.errors import KafkaError as AioKafkaError
from kafka.errors import KafkaError
from pydantic import ValidationError
from redis.exceptions import RedisError

from ingest_api.deps import Services
from ingest_api.errors import StoreUnavailableError
from ingest_api.registry_sync import read_registry
from vhc_common.kafka_admin import KafkaUnavailableError
from vhc_common.kafka_replay import replay_topic
from vhc_common.redis_loss import RedisLossGuard
from vhc_common.schemas import OutbreakAreasEvent
from vhc_common.topics import CHECKPOINTS, OUTBREAK_AREAS, topic_specs

__all__ = ["RECOVERABLE", "restore_views", "watch"]

log = logging.getLogger(__name__)

#: Errors after which a restore is simply tried again later.
RECOVERABLE = (KafkaUnavailableError, KafkaError, AioKafkaError, StoreUnavailableError,
               RedisError)


async def restore_views(services: Services) -> tuple[int, int]:
    """Put back what the views lack; ``(checkpoints restored, outbreak lists read)``."""
    settings = services.settings
    specs = {s.name: s.partitions for s in topic_specs(
        partitions=settings.partitions, retention_days=settings.retention_days)}
    registry = await read_registry(settings.kafka_bootstrap, partitions=specs[CHECKPOINTS])
    restored = await services.checkpoints.restore(registry)
    await services.naming.restore(registry)
    latest: OutbreakAreasEvent | None = None
    in_force_by = datetime.now(UTC) + timedelta(seconds=settings.max_future_skew_s)

    async def keep(value: bytes) -> None:
        nonlocal latest
        try:
            event = OutbreakAreasEvent.model_validate_json(value)
        except ValidationError as exc:
            log.error("skipping a bad %s record: %s", OUTBREAK_AREAS, exc)
            return
        if event.effective_from <= in_force_by and (
                latest is None or event.effective_from >= latest.effective_from):
            latest = event

    read = await replay_topic(settings.kafka_bootstrap, OUTBREAK_AREAS,
                              specs[OUTBREAK_AREAS], keep)
    if latest is not None:
        await services.outbreak_areas.put_if_later(latest)
    log.info("registry: %d checkpoints on %s, %d restored into Redis; outbreak areas: %d "
             "lists read", len(registry), CHECKPOINTS, restored, read)
    return restored, read


async def watch(services: Services, guard: RedisLossGuard, *,
                interval_s: float = 5.0) -> None:
    """Every ``interval_s``, once the start's own restore is done (which made ``guard``'s
    first check): if Redis lost its data, put the views back (counted in
    ``vhc_api_redis_rebuilds_total``). Until then the ingest claim script answers 503."""
    await services.registry_synced.wait()
    while True:
        try:
            if await guard.lost():
                log.warning("Redis lost its data: putting the registry and the "
                            "outbreak-area list back from Kafka")
                services.registry_synced.clear()  # unknown checkpoints: 503, not 422
                services.metrics.redis_rebuilds.inc()
                await restore_views(services)
                await guard.mark_restored()
                services.registry_synced.set()
        except RECOVERABLE as exc:
            log.warning("Redis loss check or restore failed, retrying in %.0f s: %s",
                        interval_s, exc)
        await asyncio.sleep(interval_s)

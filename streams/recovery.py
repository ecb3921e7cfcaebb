"""The worker puts back its Redis views after Redis lost its data
(``vhc_common.redis_loss``):

- the statistics (hour buckets, last-seen times) and today's and yesterday's daily totals,
  from its own tables (the authority for them, kept in Kafka changelogs), under the same
  lock as batch processing so a batch never interleaves;
- the processed offsets the case look-up waits for, up to the records whose views were
  written (see ``rewrite_from_tables``);
- the alert view, with every acknowledgement and resolution, from ``alerts.v1`` and
  ``alert-status.v1`` (``streams.rebuild_alerts``);
- the exposure index (who was where), from ``declarations.v1`` within the retention: for
  each assigned partition not marked indexed (``redis_keys.exposure_indexed``), the records
  below where this worker's live batches write it, then the mark, only if Redis kept
  everything meanwhile (``RedisLossGuard.hset_if_generation``). A Redis loss takes the
  marks with it, so the case look-up, which waits for them, never answers from an index
  with a hole (it did once: a case reported while the replay ran found no visits).

Every write is idempotent (absolute values, set members, alerts by id), so two workers
doing it at once, or a batch writing the same bucket, do no harm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from functools import partial

from pydantic import ValidationError
from redis.asyncio import Redis

from streams.config import WorkerSettings
from streams.pipeline import Pipeline
from streams.rebuild_alerts import rebuild
from streams.views import daily_totals, raise_processed_offsets, stats_view, visits
from vhc_common import redis_keys
from vhc_common.kafka_replay import replay_topic
from vhc_common.redis_loss import RedisLossGuard
from vhc_common.schemas import DeclarationEvent
from vhc_common.timebase import DAY_MS, to_ms
from vhc_common.topics import DECLARATIONS, topic_specs

__all__ = ["reindex_exposure", "replay_exposure_index", "rewrite_from_tables",
           "start_rebuild", "start_reindex"]

log = logging.getLogger(__name__)

CHUNK = 500


async def rewrite_from_tables(redis: Redis, pipeline: Pipeline, *,
                              viewed: Mapping[int, int], now_ms: int, utc_offset_ms: int,
                              retention_ms: int) -> int:
    """Write every stats bucket, last-seen time and the daily totals of today and
    yesterday that the tables hold, and raise the processed offsets to ``viewed``
    (partition -> the offset below which every record's views were written: the
    committed offset at the assignment, or past this process's last batch); returns the
    number of buckets written. Call it under the batch lock. (Not the tables' own next
    offsets: after a crash they can be a batch ahead of the exposure index, a batch whose
    state reached the changelog and whose views did not reach Redis, and the case
    look-up would answer without its visits.)"""
    today = (now_ms + utc_offset_ms) // DAY_MS
    counting, daily = pipeline.views_of_tables(days=(today - 1, today))
    pipe = redis.pipeline(transaction=False)
    stats_view(pipe, counting, now_ms=now_ms)
    daily_totals(pipe, daily, retention_ms=retention_ms)
    raise_processed_offsets(pipe, viewed)
    await pipe.execute()
    return len(counting.buckets)


async def replay_exposure_index(settings: WorkerSettings, redis: Redis,
                                upto: Mapping[int, int]) -> int:
    """Put back the exposure index from ``declarations.v1``: the records this worker had
    processed on its partitions (``upto``: partition -> next offset; the records after
    them write the index as they are processed); returns the records read."""
    partitions = next(s.partitions for s in topic_specs(
        partitions=settings.partitions, retention_days=settings.retention_days)
        if s.name == DECLARATIONS)
    retention_ms = settings.retention_days * DAY_MS
    oldest_ms = int(time.time() * 1000) - retention_ms
    pending: list[DeclarationEvent] = []

    async def flush() -> None:
        pipe = redis.pipeline(transaction=False)
        visits(pipe, pending, retention_ms=retention_ms)
        await pipe.execute()
        pending.clear()

    async def keep(value: bytes) -> None:
        try:
            event = DeclarationEvent.model_validate_json(value)
        except ValidationError:
            return  # dead-lettered by the pipeline when it was first read
        if to_ms(event.scanned_at) >= oldest_ms:
            pending.append(event)
        if len(pending) >= CHUNK:
            await flush()

    read = await replay_topic(settings.kafka_bootstrap, DECLARATIONS, partitions, keep,
                              upto=upto)
    if pending:
        await flush()
    return read


async def reindex_exposure(settings: WorkerSettings, redis: Redis, guard: RedisLossGuard,
                           generation: str, upto: Mapping[int, int]) -> None:
    """Replay the exposure index of the partitions in ``upto`` (partition -> the offset
    from which this worker's batches write it), then mark them indexed if Redis kept what
    this process wrote since ``generation`` was current."""
    started = time.monotonic()
    declarations = await replay_exposure_index(settings, redis, upto)
    marked = await guard.hset_if_generation(generation, redis_keys.exposure_indexed(),
                                            {str(p): "1" for p in upto})
    if marked:
        log.info("exposure index of partitions %s replayed from Kafka in %.1f s: %d "
                 "declarations", sorted(upto), time.monotonic() - started, declarations)
    else:
        log.warning("exposure index of partitions %s replayed (%d declarations), but Redis "
                    "lost its data meanwhile: replayed again", sorted(upto), declarations)


async def rebuild_alert_view(settings: WorkerSettings, alerts_upto: Mapping[int, int]) -> None:
    """The alert view, in the background: what this worker had stored before Redis lost
    it (what comes after is stored as it is processed)."""
    started = time.monotonic()
    read, added, applied = await rebuild(settings, alerts_upto=alerts_upto)
    log.info("alert view rebuilt from Kafka in %.1f s: %d alerts read, %d put back, %d "
             "status changes applied", time.monotonic() - started, read, added, applied)


def start_rebuild(settings: WorkerSettings, alerts_upto: Mapping[int, int]) -> asyncio.Task[None]:
    task = asyncio.create_task(rebuild_alert_view(settings, alerts_upto))
    task.add_done_callback(partial(_log_failure, "rebuilding the alert view from Kafka"))
    return task


def start_reindex(settings: WorkerSettings, redis: Redis, guard: RedisLossGuard,
                  generation: str, upto: Mapping[int, int]) -> asyncio.Task[None]:
    task = asyncio.create_task(reindex_exposure(settings, redis, guard, generation, upto))
    task.add_done_callback(partial(_log_failure, "replaying the exposure index"))
    return task


def _log_failure(what: str, task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed (retried at the next loss check): %s", what, task.exception())

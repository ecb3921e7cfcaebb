"""The faust application of the stream worker: topics, tables and agents, built from settings.

``create_worker`` builds everything inside a function so that settings are read once,
tests can build their own app, and nothing is module-level mutable state.

Delivery: at-least-once. Table writes go to the changelog before offsets are committed
(faust flushes the producer first), and counting is idempotent by ``declaration_id``, so
a replay after a crash or rebalance counts nothing twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import faust
from redis.asyncio import Redis

from detectors.flags import FlagPolicy
from streams.config import WorkerSettings
from streams.counting import DeclarationCounting, RawRecord
from streams.metrics import WorkerMetrics
from streams.views import write_stats_view
from vhc_common import redis_keys
from vhc_common.partitioning import copartitioner
from vhc_common.topics import DEADLETTER, DECLARATIONS

__all__ = ["Worker", "create_worker"]

log = logging.getLogger(__name__)

HEARTBEAT_TTL_FACTOR = 5


@dataclass
class Worker:
    app: faust.App
    settings: WorkerSettings
    metrics: WorkerMetrics
    redis: Redis


def create_worker(settings: WorkerSettings, metrics: WorkerMetrics | None = None) -> Worker:
    metrics = metrics if metrics is not None else WorkerMetrics()
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{hp}" for hp in settings.kafka_bootstrap.split(",")],
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        producer_partitioner=copartitioner,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        table_cleanup_interval=60.0,
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
    )
    redis = Redis.from_url(settings.redis_url)

    declarations = app.topic(DECLARATIONS, key_type=bytes, value_type=bytes,
                             partitions=settings.partitions, internal=False)
    deadletter = app.topic(DEADLETTER, key_type=bytes, value_type=bytes, internal=False)

    # Table names carry a version: a change of encoding is a new table, never a silent reuse
    # of incompatible changelog state.
    buckets = app.Table("decl-count-buckets-v1", key_type=str, value_type=bytes,
                        partitions=settings.partitions, use_partitioner=True)
    recent = app.Table("decl-count-recent-v1", key_type=str, value_type=str,
                       partitions=settings.partitions, use_partitioner=True)
    counting = DeclarationCounting(
        buckets=buckets,
        recent=recent,
        policy=FlagPolicy(fever_threshold_c=settings.fever_threshold_c),
        outbreak_areas=frozenset,  # outbreak areas arrive with the detectors (issue 2/6)
    )

    @app.agent(declarations, name="count-declarations")
    async def count_declarations(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            started = time.perf_counter()
            records = [
                RawRecord(e.message.topic, e.message.partition, e.message.offset,
                          e.message.key, e.message.value)
                for e in events
            ]
            result = counting.apply(records)
            for record, reason in result.dead:
                await deadletter.send(
                    key=record.key,
                    value=record.value,
                    headers={
                        "vhc-source-topic": record.topic.encode(),
                        "vhc-source-partition": str(record.partition).encode(),
                        "vhc-source-offset": str(record.offset).encode(),
                        "vhc-error": reason[:1000].encode(),
                    },
                )
                metrics.dead_letters.labels(record.topic).inc()
            now = time.time()
            await write_stats_view(redis, result, now_ms=int(now * 1000))
            for outcome, n in result.outcomes.items():
                metrics.records.labels(DECLARATIONS, outcome).inc(n)
            for event in result.events:
                metrics.event_lag.observe(max(0.0, now - event.received_at.timestamp()))
            metrics.batch_size.observe(len(records))
            metrics.batch_seconds.observe(time.perf_counter() - started)

    @app.timer(settings.heartbeat_interval_s)  # type: ignore[untyped-decorator]
    async def heartbeat() -> None:
        # "Consuming" means partitions are assigned and the agent runs; /readyz reads this.
        if app.consumer.assignment():
            ttl_ms = int(settings.heartbeat_interval_s * HEARTBEAT_TTL_FACTOR * 1000)
            await redis.set(redis_keys.worker_heartbeat(), settings.app_id, px=ttl_ms)

    return Worker(app=app, settings=settings, metrics=metrics, redis=redis)

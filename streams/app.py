"""The faust application of the stream worker: topics, tables and agents, built from settings.

``create_worker`` builds everything inside a function so that settings are read once,
tests can build their own app, and nothing is module-level mutable state.

Agents
------
* ``process-declarations`` (``declarations.v1``, batches): counts (live stats), runs the
  detectors per checkpoint, advances stream time, sends alerts to ``alerts.v1``, updates
  the Redis views (stats, exposure visit index, processed offsets).
* ``process-ticks`` (internal tick topic, co-partitioned): advances stream time from the
  wall clock while a live partition is idle, and judges the hours that closed.
* ``store-alerts`` (``alerts.v1``): the alerts' Redis view, idempotent by alert id, so it
  can be rebuilt from the topic.

Delivery: at-least-once. Table writes go to the changelog before offsets are committed
(faust flushes the producer first); counting is idempotent by ``declaration_id`` and the
detectors by input offset, so a replay after a crash or rebalance changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, TypeVar

import faust
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from detectors.aberration import AberrationDetector, AberrationParams
from detectors.cluster import ClusterDetector, ClusterParams
from detectors.flags import FlagPolicy
from detectors.outbreak import OutbreakAreaChange, OutbreakAreaHistory
from detectors.volume import VolumeDetector, VolumeParams
from streams.clock import StreamClock
from streams.config import WorkerSettings
from streams.counting import DeclarationCounting, RawRecord
from streams.detection import CheckpointInfo, Detection, DetectionResult
from streams.metrics import WorkerMetrics
from streams.mirror import TopicMirror
from streams.views import write_views
from streams.wards import WardDetection, WardRecord
from vhc_common import redis_keys
from vhc_common.alert_view import AlertView
from vhc_common.partitioning import copartitioner
from vhc_common.schemas import AlertEvent, CheckpointEvent, OutbreakAreasEvent
from vhc_common.topics import (
    ALERTS,
    CHECKPOINTS,
    DEADLETTER,
    DECLARATIONS,
    OUTBREAK_AREAS,
    topic_specs,
)

__all__ = ["Worker", "create_worker"]

log = logging.getLogger(__name__)

HEARTBEAT_TTL_FACTOR = 5
M = TypeVar("M", bound=BaseModel)


def _decode(model: type[M], topic: str, key: bytes | None, value: bytes | None) -> M | None:
    """A mirrored record, or ``None`` (logged) for a tombstone or a record that is not one:
    a read model skips what it cannot read rather than stop every agent."""
    if value is None:
        return None
    try:
        return model.model_validate_json(value)
    except ValidationError as exc:
        log.error("bad %s record (key %r): %s", topic, key, exc)
        return None


@dataclass
class ReadModels:
    """What the worker mirrors from compacted topics (rebuilt at every start)."""

    registry: dict[str, CheckpointInfo] = field(default_factory=dict)
    outbreak: OutbreakAreaHistory = field(default_factory=OutbreakAreaHistory)
    ward_names: dict[str, str] = field(default_factory=dict)

    def apply_checkpoint(self, key: bytes | None, value: bytes | None, _ts: int) -> None:
        cp = _decode(CheckpointEvent, CHECKPOINTS, key, value)
        if cp is None:
            return
        self.registry[cp.checkpoint_id] = CheckpointInfo(
            ward_code=cp.ward_code, opening_hours=cp.opening_hours, kind=cp.kind.value)
        self.ward_names[cp.ward_code] = cp.ward_name

    def apply_outbreak(self, key: bytes | None, value: bytes | None, _ts: int) -> None:
        change = _decode(OutbreakAreasEvent, OUTBREAK_AREAS, key, value)
        if change is None:
            return
        self.outbreak = self.outbreak.apply(OutbreakAreaChange(
            int(change.effective_from.timestamp() * 1000), frozenset(change.areas)))


@dataclass
class Worker:
    app: faust.App
    settings: WorkerSettings
    metrics: WorkerMetrics
    redis: Redis
    models: ReadModels
    mirrors: list[TopicMirror]


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
        broker_max_poll_records=settings.batch_max,
        stream_buffer_maxsize=max(4096, settings.batch_max * 4),
        key_serializer="raw",
        value_serializer="raw",
    )
    redis = Redis.from_url(settings.redis_url)
    alert_view = AlertView(redis, retention_s=settings.retention_days * 86_400)
    models = ReadModels()
    specs = {s.name: s.partitions for s in topic_specs(
        partitions=settings.partitions, retention_days=settings.retention_days)}
    mirrors = [TopicMirror(settings.kafka_bootstrap, CHECKPOINTS, specs[CHECKPOINTS],
                           models.apply_checkpoint),
               TopicMirror(settings.kafka_bootstrap, OUTBREAK_AREAS, specs[OUTBREAK_AREAS],
                           models.apply_outbreak)]

    declarations = app.topic(DECLARATIONS, key_type=bytes, value_type=bytes,
                             partitions=settings.partitions, internal=False)
    deadletter = app.topic(DEADLETTER, key_type=bytes, value_type=bytes, internal=False)
    alerts_topic = app.topic(ALERTS, key_type=bytes, value_type=bytes,
                             partitions=settings.partitions, internal=False)
    by_ward = app.topic(f"{settings.app_id}-by-ward-v1", key_type=bytes, value_type=bytes,
                        partitions=settings.partitions, internal=True)
    ticks = app.topic(f"{settings.app_id}-ticks-v1", key_type=bytes, value_type=bytes,
                      partitions=settings.partitions, internal=True)

    # Table names carry a version: a change of encoding is a new table, never a silent reuse
    # of incompatible changelog state. use_partitioner + the co-partitioner put every key
    # on its checkpoint's partition, whatever the batch it is written from.
    def table(name: str, value_type: type) -> Any:
        # faust writes table keys as JSON strings; the co-partitioner reads them as such.
        return app.Table(name, key_type=str, value_type=value_type,
                         partitions=settings.partitions, use_partitioner=True)

    counting = DeclarationCounting(
        buckets=table("decl-count-buckets-v1", bytes),
        recent=table("decl-count-recent-v1", str),
        policy=FlagPolicy(fever_threshold_c=settings.fever_threshold_c),
        outbreak_areas_at=lambda ms: models.outbreak.areas_at(ms),
    )
    detection = Detection(
        states=table("detector-state-v1", str),
        policy=FlagPolicy(fever_threshold_c=settings.fever_threshold_c),
        cluster=ClusterDetector(ClusterParams(min_people=settings.cluster_min_people,
                                              window_s=settings.cluster_window_s)),
        aberration=AberrationDetector(AberrationParams(grace_s=settings.grace_s)),
        volume=VolumeDetector(VolumeParams(grace_s=settings.grace_s)),
        grace_s=settings.grace_s,
    )
    wards = WardDetection(states=table("ward-state-v1", str),
                          aberration=AberrationDetector(AberrationParams(grace_s=settings.grace_s)),
                          grace_s=settings.grace_s, ward_names=models.ward_names)
    clock = StreamClock(table("stream-clock-v1", str), partitions=settings.partitions,
                        live_lag_ms=settings.live_lag_s * 1000,
                        tick_lag_ms=settings.tick_lag_s * 1000)

    def info(checkpoint_id: str) -> CheckpointInfo:
        return models.registry.get(checkpoint_id, CheckpointInfo())

    async def dead_letter(record: RawRecord, reason: str) -> None:
        """To ``deadletter.v1`` with where it came from and why (the caller has logged it)."""
        await deadletter.send(key=record.key, value=record.value, headers={
            "vhc-source-topic": record.topic.encode(),
            "vhc-source-partition": str(record.partition).encode(),
            "vhc-source-offset": str(record.offset).encode(),
            "vhc-error": reason[:1000].encode(),
        })
        metrics.dead_letters.labels(record.topic).inc()

    async def emit(alerts: list[AlertEvent]) -> None:
        # Buffered, not awaited one by one: faust flushes the producer before it commits
        # the input offsets, so an alert is durable before its cause counts as processed.
        for alert in alerts:
            key = (alert.checkpoint_id or alert.ward_code or alert.alert_id).encode()
            alerts_topic.send_soon(key=key, value=alert.model_dump_json().encode())
            metrics.alerts.labels(alert.kind.value).inc()

    @app.task  # type: ignore[untyped-decorator]
    async def run_mirrors() -> None:
        for mirror in mirrors:
            app.add_future(mirror.run())

    @app.agent(declarations, name="process-declarations")
    async def process_declarations(stream: Any) -> None:
        for mirror in mirrors:
            await mirror.ready.wait()  # judge nothing before the registry and areas are known
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            started = time.perf_counter()
            records = [
                RawRecord(e.message.topic, e.message.partition, e.message.offset,
                          e.message.key, e.message.value)
                for e in events
            ]
            counted = counting.apply(records)
            for record, reason in counted.dead:
                await dead_letter(record, reason)
            by_partition: dict[int, list[tuple[int, Any]]] = defaultdict(list)
            for record, event in counted.events:
                by_partition[record.partition].append((record.offset, event))
            result = DetectionResult()
            for partition, pairs in by_partition.items():
                before, _ = clock.observe(
                    partition, max(int(e.scanned_at.timestamp() * 1000) for _, e in pairs),
                    max(int(e.received_at.timestamp() * 1000) for _, e in pairs))
                members = clock.add_members(partition, {e.checkpoint_id for _, e in pairs})
                detection.on_partition(pairs, members=members, info=info,
                                       outbreak=models.outbreak, stream_time_ms=before,
                                       result=result)
            await emit(result.alerts)
            for ward, at_ms, flags in result.ward_records:
                by_ward.send_soon(key=ward.encode(),
                                  value=WardRecord(ward, at_ms, flags).encode())
            now = time.time()
            await write_views(redis, counted, records, now_ms=int(now * 1000),
                              retention_ms=settings.retention_days * 86_400_000,
                              daily=result.daily_totals)
            for outcome, n in counted.outcomes.items():
                metrics.records.labels(DECLARATIONS, outcome).inc(n)
            metrics.records.labels(DECLARATIONS, "replayed_detection").inc(result.replayed)
            metrics.late_after_close.inc(result.late_after_close)
            for _, event in counted.events:
                metrics.event_lag.observe(max(0.0, now - event.received_at.timestamp()))
            metrics.batch_size.observe(len(records))
            metrics.batch_seconds.observe(time.perf_counter() - started)

    @app.agent(by_ward, name="process-wards")
    async def process_wards(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            records = []
            for e in events:
                try:
                    records.append((e.message.offset, WardRecord.decode(e.message.value)))
                except (ValueError, TypeError) as exc:
                    log.error("bad ward record %s[%d]@%d: %r", e.message.topic,
                              e.message.partition, e.message.offset, exc)
            await emit(wards.on_records(records))

    @app.agent(ticks, name="process-ticks")
    async def process_ticks(stream: Any) -> None:
        for mirror in mirrors:
            await mirror.ready.wait()
        async for event in stream.events():
            try:
                wall_ms = int(json.loads(event.value)["wall_ms"])
            except (ValueError, KeyError, TypeError) as exc:
                log.error("bad tick %s[%d]@%d: %r", event.message.topic,
                          event.message.partition, event.message.offset, exc)
                continue
            partition = event.message.partition
            before, after = clock.tick(partition, wall_ms)
            result = DetectionResult()
            detection.on_time(members=clock.members(partition), info=info, before_ms=before,
                              after_ms=after, result=result)
            await emit(result.alerts)

    @app.timer(settings.tick_interval_s, on_leader=True)  # type: ignore[untyped-decorator]
    async def send_ticks() -> None:
        value = json.dumps({"wall_ms": int(time.time() * 1000)}).encode()
        for partition in range(settings.partitions):
            await ticks.send(value=value, partition=partition)

    @app.agent(alerts_topic, name="store-alerts")
    async def store_alerts(stream: Any) -> None:
        async for event in stream.events():
            try:
                alert = AlertEvent.model_validate_json(event.value)
            except ValidationError as exc:
                m = event.message
                log.warning("dead-lettering %s[%d]@%d: %s", m.topic, m.partition, m.offset, exc)
                await dead_letter(RawRecord(m.topic, m.partition, m.offset, m.key, m.value),
                                  str(exc))
                continue
            await alert_view.insert(alert)

    @app.timer(settings.heartbeat_interval_s)  # type: ignore[untyped-decorator]
    async def heartbeat() -> None:
        # "Consuming" means partitions are assigned and the agent runs; /readyz reads this.
        if app.consumer.assignment() and all(m.ready.is_set() for m in mirrors):
            ttl_ms = int(settings.heartbeat_interval_s * HEARTBEAT_TTL_FACTOR * 1000)
            await redis.set(redis_keys.worker_heartbeat(), settings.app_id, px=ttl_ms)

    return Worker(app=app, settings=settings, metrics=metrics, redis=redis, models=models,
                  mirrors=mirrors)

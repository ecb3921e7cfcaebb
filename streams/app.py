"""The faust application of the stream worker: topics, tables and thin agents, built from
settings. The batch body lives in ``streams.pipeline`` (checkpoints) and ``streams.wards``
(wards), framework-free; the agents here move records in and out.

Agents
------
* ``process-declarations`` (``declarations.v1``, batches): ``Pipeline.process``, then
  sends its alerts (``alerts.v1``) and ward summaries (by-ward topic) and waits for the
  broker's acknowledgements (the outbox rule, see ``streams.pipeline``), then writes the
  Redis views (stats, exposure visit index, daily totals, processed offsets).
* ``process-ticks`` (internal tick topic, co-partitioned): moves a partition's live clock
  with the wall clock and judges what that closes; while declarations wait on the
  partition (the consumer's highwater), only as far as those processed were received
  (``Pipeline.tick``).
* ``process-wards`` (by-ward topic): ward-level aberration (``streams.wards``).
* ``store-alerts`` (``alerts.v1``): the alerts' Redis view, idempotent by alert id, so it
  can be rebuilt from the topic.

After a start or a rebalance, the tick agent sends, once per partition, the outboxes this
process did not write (the alerts and summaries of a batch whose acknowledgements a crash
may have lost); the declarations agent does the same for each envelope it loads.

Delivery: at-least-once, made exact by the envelopes' offsets, the counts' declaration
keys, deterministic alert ids and absolute ward summaries. Records the consumer skipped
(a faust race when partitions are assigned, see ``streams.offsets``) are noticed by the
next offset each partition expects and fetched again by seeking back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

import faust
from faust.types import TP
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from detectors.aberration import AberrationDetector, AberrationParams
from detectors.cluster import ClusterDetector, ClusterParams
from detectors.counts import AddOutcome
from detectors.flags import FlagPolicy, is_symptomatic
from detectors.outbreak import OutbreakAreaChange, OutbreakAreaHistory
from detectors.schedule import HoursChange, HoursTimeline, parse_opening_hours
from detectors.volume import VolumeDetector, VolumeParams
from streams.changelog import BatchedTable, batched_changelogs, flush_changelogs, send_keyed
from streams.config import WorkerSettings
from streams.counting import RawRecord
from streams.errors import BadRecordError
from streams.faust_fixes import (
    STALLED_EXIT,
    ProducerTopics,
    SeekFirstTableManager,
    changelog_topics,
    cheap_message_delivery,
    cheap_producer_flush,
    commit_processed,
    committed_offset,
    on_streams_sought,
    paused_by_faust,
    start_offsets,
    stop_for_restart,
    stop_on_agent_error,
    without_monitor,
)
from streams.metrics import WorkerMetrics
from streams.mirror import TopicMirror
from streams.offsets import (
    Admission,
    CommitWatch,
    OffsetGuard,
    Stall,
    StallWatch,
)
from streams.pipeline import (
    UNREGISTERED,
    BatchOutput,
    CheckpointInfo,
    Pipeline,
    PipelineTables,
    TimeRules,
    decode_tick,
)
from streams.recovery import rewrite_from_tables, start_rebuild, start_reindex
from streams.views import write_views
from streams.wards import (
    HourSummary,
    WardOutput,
    WardProcessor,
    Watermark,
    decode_ward_record,
)
from vhc_common import redis_keys, redis_wire
from vhc_common.alert_view import AlertView
from vhc_common.kafka_security import faust_credentials
from vhc_common.partitioning import copartitioner, partition_for
from vhc_common.redis_loss import RedisLossGuard
from vhc_common.schemas import AlertEvent, CheckpointEvent, OutbreakAreasEvent
from vhc_common.timebase import LOCAL_UTC_OFFSET_MIN, to_ms
from vhc_common.topics import (
    ALERTS,
    CHECKPOINTS,
    DEADLETTER,
    DECLARATIONS,
    OUTBREAK_AREAS,
    TopicSpec,
    topic_specs,
)

__all__ = ["Detectors", "ReadModels", "Worker", "create_worker", "detectors_from"]

log = logging.getLogger(__name__)

HEARTBEAT_TTL_FACTOR = 5
#: how often a seek back to records the consumer skipped is repeated while they are missing
GAP_RESEEK_S = 2.0
REDIS_CHECK_S = 5.0  # how often the worker checks that Redis still holds its views
PRODUCER_BUFFER_MIN = 1_000
PRODUCER_LINGER_S = 0.005
PRODUCER_BATCH_BYTES = 256 * 1024
ALERT_BATCH_WITHIN_S = 0.05  # the longest an alert waits for others to be stored with
#: how long a partition with records waiting may deliver nothing before it is sought back
STALL_S = 30.0
#: the longest a watchdog waits for one consumer call (seek, offsets, commit)
CONSUMER_CALL_TIMEOUT_S = 15.0
T = TypeVar("T")
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


def hours_timeline(cp: CheckpointEvent) -> HoursTimeline:
    """A checkpoint's opening hours over time (registered before the history existed:
    the current hours, from the start)."""
    changes = cp.opening_hours_history or ()
    if not changes:
        return HoursTimeline([HoursChange(0, parse_opening_hours(_as_hours(cp.opening_hours)))])
    return HoursTimeline([HoursChange(to_ms(c.effective_from),
                                      parse_opening_hours(_as_hours(c.opening_hours)))
                          for c in changes])


def _as_hours(value: tuple[str, ...] | str | None) -> list[str] | str | None:
    return list(value) if isinstance(value, tuple) else value


@dataclass
class ReadModels:
    """What the worker mirrors from compacted topics (rebuilt at every start)."""

    partitions: int
    #: How far back declarations can be (the ingest refuses older ones): outbreak-area
    #: changes superseded before that are pruned from the mirror.
    retention_ms: int = 60 * 86_400_000
    wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)
    registry: dict[str, CheckpointInfo] = field(default_factory=dict)
    outbreak: OutbreakAreaHistory = field(default_factory=OutbreakAreaHistory)
    ward_names: dict[str, str] = field(default_factory=dict)
    #: ward -> input partitions of its checkpoints, and the other way round
    ward_partitions: dict[str, set[int]] = field(default_factory=dict)
    partition_wards: dict[int, set[str]] = field(default_factory=dict)

    def info(self, checkpoint_id: str) -> CheckpointInfo:
        return self.registry.get(checkpoint_id) or UNREGISTERED

    def partitions_of(self, ward: str) -> set[int]:
        return self.ward_partitions.get(ward, set())

    def wards_on(self, partition: int) -> set[str]:
        return self.partition_wards.get(partition, set())

    def apply_checkpoint(self, key: bytes | None, value: bytes | None, _ts: int) -> None:
        cp = _decode(CheckpointEvent, CHECKPOINTS, key, value)
        if cp is None:
            return
        self.registry[cp.checkpoint_id] = CheckpointInfo(
            ward_code=cp.ward_code, hours=hours_timeline(cp), kind=cp.kind.value)
        self.ward_names[cp.ward_code] = cp.ward_name
        partition = partition_for(cp.checkpoint_id.encode(), self.partitions)
        # A checkpoint that moved ward leaves its old ward a partition to hear from: the
        # old ward's watermark from it then says "nothing active", which costs nothing.
        self.ward_partitions.setdefault(cp.ward_code, set()).add(partition)
        self.partition_wards.setdefault(partition, set()).add(cp.ward_code)

    def apply_outbreak(self, key: bytes | None, value: bytes | None, _ts: int) -> None:
        change = _decode(OutbreakAreasEvent, OUTBREAK_AREAS, key, value)
        if change is None:
            return
        self.outbreak = self.outbreak.apply(OutbreakAreaChange(
            to_ms(change.effective_from), frozenset(change.areas))).prune(
            self.wall_ms() - self.retention_ms)


@dataclass(frozen=True)
class Detectors:
    cluster: ClusterDetector
    volume: VolumeDetector
    aberration: AberrationDetector
    ward_aberration: AberrationDetector


def detectors_from(settings: WorkerSettings) -> Detectors:
    """The detectors as the settings configure them (the worker and ``evaluate`` share
    this, so an evaluation measures what runs)."""
    methods = tuple(settings.aberration_methods)
    return Detectors(
        cluster=ClusterDetector(ClusterParams(
            min_people=settings.cluster_min_people, window_s=settings.cluster_window_s,
            budget_per_100_days=settings.budget_cluster)),
        volume=VolumeDetector(VolumeParams(
            grace_s=settings.grace_s, surge_budget_per_100_days=settings.budget_surge,
            silence_budget_per_100_days=settings.budget_silence)),
        aberration=AberrationDetector(AberrationParams(
            methods=methods, budget_per_100_days=settings.budget_aberration)),
        ward_aberration=AberrationDetector(AberrationParams(
            methods=methods, budget_per_100_days=settings.budget_ward_aberration)),
    )


@dataclass
class Worker:
    app: faust.App
    settings: WorkerSettings
    metrics: WorkerMetrics
    redis: Redis
    models: ReadModels
    mirrors: list[TopicMirror]
    pipeline: Pipeline
    wards: WardProcessor
    #: the topics the worker writes, and whether the producer knows them all
    sendable: ProducerTopics


#: The largest record the worker writes (changelog records of a checkpoint's state).
MAX_RECORD_BYTES = 8 * 1024 * 1024


def internal_topic_specs(settings: WorkerSettings) -> list[TopicSpec]:
    """The worker's own topics (ward summaries, ticks), created before faust starts: with
    the retention, since ward summaries carry pseudonymous person keys, and present before
    the first subscription (faust creating them at start raced its own subscription,
    leaving the ticks topic unassigned until the next rebalance)."""
    retention = {"retention.ms": str(settings.retention_days * 86_400_000),
                 "cleanup.policy": "delete"}
    return [TopicSpec(f"{settings.app_id}-ward-hours-v2", settings.partitions, retention),
            TopicSpec(f"{settings.app_id}-ticks-v1", settings.partitions, retention)]


def create_worker(settings: WorkerSettings, metrics: WorkerMetrics | None = None) -> Worker:
    metrics = metrics if metrics is not None else WorkerMetrics()
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{hp}" for hp in settings.kafka_bootstrap.split(",")],
        broker_credentials=faust_credentials(),
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
        table_standby_replicas=settings.standby_replicas,
        web_enabled=False,
        broker_max_poll_records=settings.batch_max,
        producer_max_request_size=MAX_RECORD_BYTES,
        # A batch's alerts and summaries went out one or two per produce request (linger
        # 0): a few milliseconds gather them into a request per partition.
        producer_linger=PRODUCER_LINGER_S,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        stream_buffer_maxsize=max(4096, settings.batch_max * 4),
        key_serializer="raw",
        value_serializer="raw",
        # Seek stream partitions before resuming them after a rebalance (streams.faust_fixes)
        TableManager=SeekFirstTableManager,
        # Table changelog records leave a batch at a time (streams.changelog)
        Table=BatchedTable,
    )
    # faust's producer buffer holds what faust sends with ``send_soon`` (it held the
    # tables' changelog records before ``streams.changelog``); past ``max_messages`` (100)
    # the consumer stops to drain it record by record (polling with 0.1 s timeouts, a
    # warning each time). Commits still flush it first (faust's ``Consumer.commit``), and
    # the batched changelogs before it (``batched_changelogs``).
    app.producer.buffer.max_messages = max(PRODUCER_BUFFER_MIN, settings.batch_max * 4)
    cheap_producer_flush(app)
    batched_changelogs(app)
    cheap_message_delivery(app)
    without_monitor(app)
    stop_on_agent_error(app, log)
    redis = redis_wire.client(settings.redis_url)
    alert_view = AlertView(redis, retention_s=settings.retention_days * 86_400)
    models = ReadModels(partitions=settings.partitions,
                        retention_ms=settings.retention_days * 86_400_000)
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
    # Created before faust starts, with the retention (``internal_topic_specs``).
    retention = timedelta(days=settings.retention_days)
    ward_topic, tick_topic = (s.name for s in internal_topic_specs(settings))
    by_ward = app.topic(ward_topic, key_type=bytes, value_type=bytes,
                        partitions=settings.partitions, internal=True)
    ticks = app.topic(tick_topic, key_type=bytes, value_type=bytes,
                      partitions=settings.partitions, internal=True)

    # Table names carry a version: a change of encoding is a new table, never a silent reuse
    # of incompatible changelog state. use_partitioner + the co-partitioner put every key
    # on its checkpoint's partition, whatever the batch it is written from.
    def table(name: str, value_type: type) -> Any:
        # faust writes table keys as JSON strings; the co-partitioner reads them as such.
        # A checkpoint's record (state + the outbox of a batch) can pass 1 MiB in a large
        # backlog batch: allow 8 MiB per record on the changelog (and in the producer).
        return app.Table(name, key_type=str, value_type=value_type,
                         partitions=settings.partitions, use_partitioner=True,
                         extra_topic_configs={
                             "max.message.bytes": str(MAX_RECORD_BYTES),
                             # Compacted changelogs hold person keys in superseded values:
                             # segments roll daily and are compacted within the retention,
                             # so no old value outlives it.
                             "max.compaction.lag.ms": str(int(retention.total_seconds() * 1000)),
                             "segment.ms": str(min(int(retention.total_seconds() * 1000),
                                                   86_400_000)),
                         })

    detectors = detectors_from(settings)
    pipeline = Pipeline(
        tables=PipelineTables(buckets=table("decl-count-buckets-v2", bytes),
                              recent=table("decl-count-recent-v2", str),
                              checkpoints=table("checkpoint-state-v2", str),
                              clocks=table("stream-clock-v2", str)),
        partitions=settings.partitions,
        policy=FlagPolicy(fever_threshold_c=settings.fever_threshold_c),
        cluster=detectors.cluster, volume=detectors.volume, aberration=detectors.aberration,
        rules=TimeRules(grace_ms=settings.grace_s * 1000, live_lag_ms=settings.live_lag_s * 1000,
                        tick_lag_ms=settings.tick_lag_s * 1000),
        info=models.info,
        wards_on_partition=models.wards_on,
        outbreak=lambda: models.outbreak,
        wall_ms=lambda: int(time.time() * 1000),
    )
    wards = WardProcessor(states=table("ward-state-v2", str), partitions=settings.partitions,
                          aberration=detectors.ward_aberration, grace_s=settings.grace_s,
                          ward_partitions=models.partitions_of,
                          ward_names=models.ward_names.get)

    async def dead_letter(record: RawRecord, reason: str) -> None:
        """To ``deadletter.v1`` with where it came from and why (the caller has logged it)."""
        await deadletter.send(key=record.key, value=record.value, headers={
            "vhc-source-topic": record.topic.encode(),
            "vhc-source-partition": str(record.partition).encode(),
            "vhc-source-offset": str(record.offset).encode(),
            "vhc-error": reason[:1000].encode(),
        })
        metrics.dead_letters.labels(record.topic).inc()

    # Declarations and ticks both judge hours and send watermarks: one at a time, each
    # batch's records delivered before the next is judged, so that no watermark reaches a
    # ward ahead of the summaries it vouches for.
    judging = asyncio.Lock()

    async def deliver(alert_sends: Sequence[tuple[bytes, bytes]],
                      summary_sends: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Send the batch's changelog records (its outboxes among them), then its alerts
        and summaries, and wait for their acknowledgements: the outbox just written may be
        replaced by the next batch only once it is delivered."""
        await flush_changelogs(app)
        # In record batches, as the changelog: faust's per-record send was most of a
        # batch's delivery (a few hundred alerts a batch in the benchmark).
        acks = await send_keyed(app, alerts_topic.get_topic_name(), alert_sends)
        acks += await send_keyed(app, by_ward.get_topic_name(), summary_sends)
        if acks:
            await asyncio.gather(*acks)

    def count(out: BatchOutput | WardOutput) -> None:
        for alert in out.alerts:
            metrics.alerts.labels(alert.kind.value, alert.severity.value).inc()
        metrics.outbox_resent.inc(out.outcomes.get("outbox_resent", 0))

    # Partitions whose stored outboxes this process has sent since it got them. A
    # rebalance may hand a partition over to another worker and back: start afresh.
    flushed: set[int] = set()

    async def forget_on_rebalance(_sender: Any, *_args: Any, **_kwargs: Any) -> None:
        flushed.clear()
        pipeline.forget_deliveries()
        pipeline.forget_watermarks()
        wards.forget_deliveries()
        for _, guard, _, _ in inputs:
            guard.forget()
        metrics.consumer_lag.clear()  # partitions may move to another worker
        alert_next.clear()
        stalls.forget()
        commit_stalls.forget()
        settled.clear()

    app.on_partitions_revoked.connect(forget_on_rebalance)  # type: ignore[arg-type]

    # Records the consumer skipped (``streams.offsets``): seek back to the first missing
    # one, and again every GAP_RESEEK_S while the hole stays open (a seek can be lost to
    # the same race). The alerts' view keeps its next offsets in Redis, with the view
    # (``redis_keys.alert_view_offsets``), read once per partition after an assignment.
    alert_offsets = OffsetGuard()
    alert_next: dict[int, int] = {}
    sought: dict[tuple[str, int], float] = {}

    def alert_next_offset(partition: int) -> int:
        return alert_next.get(partition, -1)

    def accept_alert_gap(partition: int) -> None:
        alert_next[partition] = -1  # the next record stored is the new start
        alert_offsets.close(partition)

    # Every input whose records the worker applies exactly once, in offset order: its
    # guard, the next offset its owner expects, and how a loss to retention is accepted.
    inputs: list[tuple[str, OffsetGuard, Callable[[int], int], Callable[[int], None]]] = [
        (DECLARATIONS, pipeline.offsets, pipeline.next_offset, pipeline.accept_gap),
        (by_ward.get_topic_name(), wards.offsets, wards.next_offset, wards.accept_gap),
        (ALERTS, alert_offsets, alert_next_offset, accept_alert_gap),
    ]

    #: where each input partition started after the last assignment: records before it
    #: were processed by an earlier run (``streams.recovery`` rebuilds views up to it)
    started: dict[tuple[str, int], int] = {}
    #: partition -> the offset after the last record whose views this process wrote
    viewed: dict[int, int] = {}
    #: partition -> the offset from which this process's batches have written the exposure
    #: index without a hole since Redis last lost it: where the partition was sought, or
    #: where processing stood when the loss was noticed (``streams.recovery`` replays what
    #: lies below it when the partition is not marked indexed)
    indexed_from: dict[int, int] = {}

    def views_written(partition: int) -> int:
        """The offset below which this process (or the run before it) wrote the views of
        every ``declarations.v1`` record on ``partition``."""
        return max(viewed.get(partition, 0), started.get((DECLARATIONS, partition), 0))

    def started_at(positions: Mapping[TP, int]) -> None:
        """Where faust sought each input partition: its first record is expected there."""
        guards = {topic: guard for topic, guard, _, _ in inputs}
        for tp, offset in positions.items():
            started[(tp.topic, tp.partition)] = offset
            if tp.topic == DECLARATIONS:
                indexed_from[tp.partition] = offset  # records from here are written again
            if tp.topic in guards:
                guards[tp.topic].start_at(tp.partition, offset)

    on_streams_sought(app, started_at)

    async def until_stored(what: str, call: Callable[[], Awaitable[T]]) -> T:
        """A Redis write the views need, retried until Redis takes it (down, restarting,
        loading its data): processing waits rather than skipping a view update."""
        delay = 0.2
        while True:
            try:
                return await call()
            except RedisError as exc:
                metrics.redis_retries.inc()
                log.warning("%s: Redis unavailable, retrying in %.1f s: %s", what, delay, exc)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

    async def bounded(what: str, call: Awaitable[T]) -> T | None:
        """A consumer call from the watchdogs, bounded in time: a call that hangs or fails
        is logged and tried again at the next tick, and the watchdog goes on."""
        try:
            return await asyncio.wait_for(call, CONSUMER_CALL_TIMEOUT_S)
        except Exception as exc:  # the watchdog must outlive any one failed call
            log.warning("%s failed (%r); trying again later", what, exc)
            return None

    async def seek_back(topic: str, gaps: Mapping[int, int],
                        accept: Callable[[int], None]) -> None:
        now = time.monotonic()
        for partition, expected in sorted(gaps.items()):
            if now - sought.get((topic, partition), -GAP_RESEEK_S) < GAP_RESEEK_S:
                continue
            sought[(topic, partition)] = now
            tp = TP(topic, partition)
            if tp not in app.consumer.assignment():
                continue
            found = await bounded(f"earliest offset of {tp}", app.consumer.earliest_offsets(tp))
            if found is None:
                continue  # asked again at the next reseek
            earliest = found.get(tp)
            if earliest is not None and expected < earliest:
                log.error("%s[%d]: records %d..%d were deleted by retention before they "
                          "were read; going on from %d", topic, partition, expected,
                          earliest - 1, earliest)
                accept(partition)
                metrics.offset_gaps.labels(topic, "lost").inc()
                continue
            log.warning("%s[%d]: records from offset %d were skipped by the consumer; "
                        "seeking back to it", topic, partition, expected)
            metrics.offset_gaps.labels(topic, "rewound").inc()
            await bounded(f"seek of {tp} to {expected}", app.consumer.seek_wait({tp: expected}))

    # A partition with records beyond the next one expected where that one does not come
    # for STALL_S: faust's fetcher no longer delivers it (``streams.faust_fixes`` fixes
    # one way this happens; this catches any other). Seek it to the next record expected.
    # And a partition whose group commit has not reached, STALL_S later, what the agents
    # had finished (the next offset, effects written): faust's acknowledgements have a
    # hole it will not fill, or are so fragmented that it creeps. Commit what was finished.
    stalls = StallWatch(STALL_S)
    commit_stalls = CommitWatch(STALL_S)
    settled: dict[tuple[str, int], int] = {}

    def settle(topic: str, done: Mapping[int, int]) -> None:
        """After a batch's effects are written, what the commit repair may commit
        (``done``: partition -> ``OffsetGuard.done``, never past a hole of skipped
        replays still open, whose views may never have been written)."""
        for partition, offset in done.items():
            settled[(topic, partition)] = offset

    def done_after(offsets: Iterable[tuple[int, int]], guard: OffsetGuard,
                   next_offset: Callable[[int], int]) -> dict[int, int]:
        """``OffsetGuard.done`` per partition after a batch of ``(partition, offset)``."""
        ends: dict[int, int] = {}
        for partition, offset in offsets:
            ends[partition] = max(ends.get(partition, 0), offset + 1)
        return {p: guard.done(p, next_offset(p), end) for p, end in ends.items()}

    async def start_of(tp: TP) -> int:
        """Where ``tp``'s records start for this group: its committed offset, or the
        log's first offset (the consumer resets to the earliest); -1 if unknown."""
        found = await bounded(f"earliest offset of {tp}", start_offsets(app, [tp]))
        return -1 if found is None else found.get(tp, -1)

    async def unstick(topic: str, guard: OffsetGuard, next_offset: Callable[[int], int]) -> None:
        now = time.monotonic()
        for tp in sorted(t for t in app.consumer.assignment() if t.topic == topic):
            key = (topic, tp.partition)
            expected = guard.expects(tp.partition, next_offset(tp.partition))
            highwater: int | None = app.consumer.highwater(tp)
            fetched = highwater is not None
            if not fetched:
                # The consumer learns a partition's high watermark from its fetches: none
                # answered for it since the assignment. Ask the broker, or a partition the
                # fetcher never asks for would show neither a stall nor a lag.
                ends = await bounded(f"end offset of {tp}", app.consumer.highwaters(tp))
                highwater = None if ends is None else ends.get(tp)
            if expected < 0 and highwater:
                # Nothing known of where it starts (never sought here, nothing applied):
                # from the group's commit, or the log's start with none.
                expected = await start_of(tp)
            paused = paused_by_faust(app, tp)  # outside a rebalance: never on purpose
            stall = stalls.action(key, expected, highwater, now,
                                  flowing=fetched and not paused)
            if stall is Stall.RESTART:
                log.critical("%s[%d]: offset %d has not come %.0f s after a seek back to it "
                             "though the partition holds records below %s (%s); stopping "
                             "the worker to be restarted (exit code %d)", topic,
                             tp.partition, expected, STALL_S, highwater,
                             "paused by faust" if paused else "nothing fetched",
                             STALLED_EXIT)
                stop_for_restart(log, STALLED_EXIT)
                return
            if stall is Stall.SEEK:
                log.warning("%s[%d]: offset %d has not come in %.0f s though the partition "
                            "holds records below %s; seeking back to it%s", topic,
                            tp.partition, expected, STALL_S, highwater,
                            " and resuming it (faust had left it paused)" if paused else "")
                metrics.offset_gaps.labels(topic, "stalled").inc()
                await bounded(f"seek of {tp} to {expected}",
                              app.consumer.seek_wait({tp: expected}))
                if paused:
                    app.consumer.resume_partitions({tp})
            done, committed = settled.get(key), committed_offset(app, tp)
            if highwater is not None:
                # Before this worker processed anything of the partition, its lag counts
                # from the group's commit: a partition stuck from the start shows too.
                start = done if done is not None else (committed or 0)
                metrics.consumer_lag.labels(topic, str(tp.partition)).set(
                    max(0, highwater - start))
            if done is not None and commit_stalls.overdue(key, committed, done, now):
                log.warning("%s[%d]: the group's commit is at %s, %.0f s after every record "
                            "before %d was processed; committing that", topic,
                            tp.partition, committed, STALL_S, done)
                metrics.commit_repairs.labels(topic).inc()
                await bounded(f"commit of {tp} at {done}", commit_processed(app, {tp: done}))

    @app.timer(GAP_RESEEK_S)  # type: ignore[untyped-decorator]
    async def reseek() -> None:
        for topic, guard, _, accept in inputs:
            await seek_back(topic, guard.open_gaps(), accept)

    @app.timer(GAP_RESEEK_S)  # type: ignore[untyped-decorator]
    async def watch_partitions() -> None:
        if not sendable.missing() and not app.in_recovery and not app.rebalancing:
            for topic, guard, next_offset, _ in inputs:
                await unstick(topic, guard, next_offset)

    async def flush_outboxes(partition: int) -> None:
        """Once per partition after start or a rebalance, from the tick agent (the tables
        are restored by then; sending from faust's rebalance callbacks stalled its
        consumer): the outboxes this process did not write may be undelivered."""
        out = pipeline.pending_outboxes([partition])
        ward_out = wards.pending_outboxes([partition])
        await deliver(out.alert_sends + ward_out.sends, out.summary_sends)
        flushed.add(partition)
        count(out)
        count(ward_out)

    @app.task  # type: ignore[untyped-decorator]
    async def run_mirrors() -> None:
        for mirror in mirrors:
            app.add_future(mirror.run())

    sendable = ProducerTopics(app, [*changelog_topics(app), ALERTS, DEADLETTER,
                                    by_ward.get_topic_name(), ticks.get_topic_name()])

    async def registry_known() -> None:
        """Judge nothing before the registry and areas are known. (Each batch also waits,
        right before its table writes, until the producer can send to every topic the
        worker writes: ``sendable.wait()``, ``streams.faust_fixes``.)"""
        for mirror in mirrors:
            await mirror.ready.wait()

    @app.agent(declarations, name="process-declarations")
    async def process_declarations(stream: Any) -> None:
        await registry_known()
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            started = time.perf_counter()
            records = [
                RawRecord(e.message.topic, e.message.partition, e.message.offset,
                          e.message.key, e.message.value)
                for e in events
            ]
            async with judging:
                await sendable.wait()  # nothing awaited from here to the table writes
                out = pipeline.process(records)
                now = time.time()
                # The Redis views and the broker's acknowledgements at once: both are
                # waits on another process (at 2,000 checkpoints a batch's views kept
                # Redis busy about 100 ms). Every view write is absolute or idempotent, so
                # views written before the outbox is delivered are right after a crash
                # too: the batch comes again, and its outbox is sent again.
                # Not past a hole of skipped records: the case look-up would answer
                # without their visits before the seek back brings them
                # (``BatchOutput.applied``).
                await asyncio.gather(
                    deliver(out.alert_sends, out.summary_sends),
                    until_stored("statistics views", partial(
                        write_views, redis, out.counting, out.applied,
                        now_ms=int(now * 1000), retention_ms=settings.retention_days * 86_400_000,
                        daily=out.daily_totals)))
            await seek_back(DECLARATIONS, out.gaps, pipeline.accept_gap)
            for record, reason in out.counting.dead:
                await dead_letter(record, reason)
            for partition, nxt in out.applied.items():
                viewed[partition] = max(viewed.get(partition, 0), nxt)
            settle(DECLARATIONS, out.applied)  # the pipeline's own OffsetGuard.done
            count(out)
            metrics.late_after_close.inc(out.outcomes.get("late_after_close", 0))
            for outcome, n in out.outcomes.items():
                if outcome not in {"outbox_resent", "late_after_close"}:
                    metrics.records.labels(DECLARATIONS, outcome).inc(n)
            # Per ward a batch at a time: a labelled counter's look-up and lock per
            # declaration were more of the worker than its histograms.
            per_ward: Counter[str] = Counter()
            symptomatic_per_ward: Counter[str] = Counter()
            counted = AddOutcome.COUNTED.value
            lags: list[float] = []
            time_lags: list[float] = []
            for item in out.counting.events:
                lags.append(max(0.0, now - item.event.received_at.timestamp()))
                if item.outcome == counted:
                    time_lags.append(max(0.0, now - item.scanned_at_ms / 1000))
                    ward = models.info(item.event.checkpoint_id).ward_code or "unknown"
                    per_ward[ward] += 1
                    if is_symptomatic(item.flags):
                        symptomatic_per_ward[ward] += 1
            metrics.event_lag.observe_many(lags)
            metrics.event_time_lag.observe_many(time_lags)
            for ward, n in per_ward.items():
                metrics.ward_declarations.labels(ward).inc(n)
            for ward, n in symptomatic_per_ward.items():
                metrics.ward_symptomatic.labels(ward).inc(n)
            metrics.batch_size.observe(len(records))
            metrics.batch_seconds.observe(time.perf_counter() - started)

    @app.agent(by_ward, name="process-wards")
    async def process_wards(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            records: list[tuple[int, int, HourSummary | Watermark | None]] = []
            for e in events:
                m = e.message
                try:
                    records.append((m.partition, m.offset, decode_ward_record(m.value)))
                except BadRecordError as exc:
                    log.error("dead-lettering %s[%d]@%d: %r", m.topic, m.partition, m.offset,
                              exc)
                    await dead_letter(RawRecord(m.topic, m.partition, m.offset, m.key,
                                                m.value), repr(exc))
                    records.append((m.partition, m.offset, None))
            await sendable.wait()
            out = wards.on_records(records)
            await deliver(out.sends)
            await seek_back(by_ward.get_topic_name(), out.gaps, wards.accept_gap)
            settle(by_ward.get_topic_name(), done_after(
                ((p, o) for p, o, _ in records), wards.offsets, wards.next_offset))
            metrics.records.labels(by_ward.get_topic_name(), "late_dropped").inc(
                out.outcomes.get("late_dropped", 0))
            count(out)

    @app.agent(ticks, name="process-ticks")
    async def process_ticks(stream: Any) -> None:
        await registry_known()
        async for event in stream.events():
            try:
                wall_ms = decode_tick(event.value)
            except BadRecordError as exc:
                log.error("bad tick %s[%d]@%d: %r", event.message.topic,
                          event.message.partition, event.message.offset, exc)
                continue
            partition = event.message.partition
            async with judging:
                if partition not in flushed:
                    await sendable.wait()
                    await flush_outboxes(partition)
                await sendable.wait()
                out = pipeline.tick(partition, wall_ms, highwater=declarations_highwater(
                    partition))
                await deliver(out.alert_sends, out.summary_sends)
            metrics.ticks_held.inc(out.outcomes.get("tick_held", 0))
            count(out)

    def declarations_highwater(partition: int) -> int | None:
        """The offset the partition's next declaration will get, as the consumer last
        heard (``None``: not heard yet, or the partition is not this worker's)."""
        tp = TP(declarations.get_topic_name(), partition)
        if tp not in app.consumer.assignment():
            return None
        highwater: int | None = app.consumer.highwater(tp)
        return highwater

    @app.timer(settings.tick_interval_s, on_leader=True)  # type: ignore[untyped-decorator]
    async def send_ticks() -> None:
        value = json.dumps({"wall_ms": int(time.time() * 1000)}).encode()
        for partition in range(settings.partitions):
            await ticks.send(value=value, partition=partition)

    @app.agent(alerts_topic, name="store-alerts")
    async def store_alerts(stream: Any) -> None:
        """The alert view, a batch at a time: one round trip for the batch's alerts and
        one for the offsets stored (a round trip or two per alert were a tenth of the
        worker's time). ``ALERT_BATCH_WITHIN_S`` bounds what batching adds to the time
        from declaration to alert."""
        stored_key = redis_keys.alert_view_offsets()
        async for events in stream.take_events(settings.batch_max, ALERT_BATCH_WITHIN_S):
            fresh: list[AlertEvent] = []
            applied: dict[int, int] = {}
            for event in events:
                m = event.message
                if m.partition not in alert_next:
                    # What the view holds survives restarts in Redis itself: the group's
                    # committed offset can be past alerts never stored (``streams.offsets``).
                    stored = await until_stored("alert view offsets", partial(
                        redis.hget, stored_key, str(m.partition)))
                    alert_next[m.partition] = int(stored) if stored is not None else -1
                admission = alert_offsets.admit(m.partition, alert_next[m.partition],
                                                m.offset)
                if admission is Admission.GAP:
                    await seek_back(ALERTS, {m.partition:
                                             alert_offsets.open_gaps()[m.partition]},
                                    accept_alert_gap)
                    continue
                # A replay is stored again: storing is idempotent by alert id.
                try:
                    fresh.append(AlertEvent.model_validate_json(event.value))
                except ValidationError as exc:
                    log.warning("dead-lettering %s[%d]@%d: %s", m.topic, m.partition,
                                m.offset, exc)
                    await dead_letter(RawRecord(m.topic, m.partition, m.offset, m.key,
                                                m.value), str(exc))
                if admission is Admission.APPLY:
                    alert_next[m.partition] = applied[m.partition] = m.offset + 1
            if fresh:
                await until_stored("alert view", partial(alert_view.insert_many, fresh))
            if applied:
                # After the alerts: what is recorded as stored is stored.
                await until_stored("alert view offsets", partial(
                    redis.hset, stored_key, mapping={str(p): o for p, o in applied.items()}))
            settle(ALERTS, done_after(((e.message.partition, e.message.offset) for e in events),
                                      alert_offsets, alert_next_offset))

    redis_guard = RedisLossGuard(redis, f"worker:{settings.app_id}")
    rebuilding: asyncio.Task[None] | None = None
    indexing: asyncio.Task[None] | None = None
    rewrite_due = rebuild_due = False
    first_check, since_start = True, False

    @app.timer(REDIS_CHECK_S)  # type: ignore[untyped-decorator]
    async def watch_redis() -> None:
        """Redis lost its data (or is new): put back the views this worker owns
        (``streams.recovery``); and the exposure index of every assigned partition not
        marked indexed."""
        nonlocal rebuilding, indexing, rewrite_due, rebuild_due, first_check, since_start
        assigned = {tp.partition for tp in app.consumer.assignment()
                    if tp.topic == DECLARATIONS}
        if not assigned:
            return
        try:
            if await redis_guard.lost():
                rewrite_due = True
                metrics.redis_rebuilds.inc()
                # Found at start (a new or emptied Redis while no worker ran): what the
                # group had committed lacks its views; found later: what this process
                # had processed.
                since_start = first_check
                if indexing is not None:  # its mark would fail; what it wrote is gone
                    indexing.cancel()
                    indexing = None
            first_check = False
            if rewrite_due:
                async with judging:
                    written = await rewrite_from_tables(
                        redis, pipeline, viewed={p: views_written(p) for p in assigned},
                        now_ms=int(time.time() * 1000),
                        utc_offset_ms=LOCAL_UTC_OFFSET_MIN * 60_000,
                        retention_ms=settings.retention_days * 86_400_000)
                    if not since_start:
                        # Noticed later: what this process wrote before went with the
                        # loss (at a first check, what it wrote went to this Redis).
                        for p in assigned:
                            indexed_from[p] = max(views_written(p), pipeline.next_offset(p))
                await redis_guard.mark_restored()
                rewrite_due, rebuild_due = False, True
                log.warning("Redis had lost its data (or is new): %d statistics buckets "
                            "written back from the tables; rebuilding the alert view and "
                            "the exposure index from Kafka", written)
            if indexing is not None and indexing.done():
                indexing = None
            if indexing is None:
                generation = redis_guard.generation  # before the marks are read
                order = sorted(assigned)
                marks = await redis.hmget(redis_keys.exposure_indexed(), [str(p) for p in order])
                missing = [p for p, mark in zip(order, marks, strict=True) if mark is None]
                if missing:
                    # Batches write the index of what they process from ``indexed_from``
                    # on (the records a seek brings back included); the replay covers
                    # what lies below.
                    upto = {p: indexed_from.get(p, max(views_written(p), pipeline.next_offset(p)))
                            for p in missing}
                    indexing = start_reindex(settings, redis, redis_guard, generation, upto)
        except RedisError as exc:
            log.warning("Redis loss check or rewrite failed (retried in %.0f s): %s",
                        REDIS_CHECK_S, exc)
            return
        try:
            await alert_view.trim()  # an idle stream's old entries go too
        except RedisError as exc:
            log.warning("alert stream not trimmed (Redis unavailable): %s", exc)
        if rebuilding is not None and rebuilding.done():
            failed = not rebuilding.cancelled() and rebuilding.exception() is not None
            rebuilding, rebuild_due = None, rebuild_due or failed
        if rebuild_due and rebuilding is None:
            # What was stored before the loss: after it, processing stores the alerts.
            tps = app.consumer.assignment()
            if since_start:
                stored = {tp.partition: started.get((tp.topic, tp.partition), 0)
                          for tp in tps if tp.topic == ALERTS}
            else:
                stored = {tp.partition: max(alert_next.get(tp.partition, 0),
                                            committed_offset(app, tp) or 0)
                          for tp in tps if tp.topic == ALERTS}
            rebuilding, rebuild_due = start_rebuild(settings, stored), False

    @app.timer(settings.heartbeat_interval_s)  # type: ignore[untyped-decorator]
    async def heartbeat() -> None:
        # "Consuming" means partitions are assigned and the agent runs; /readyz reads this.
        if app.consumer.assignment() and not sendable.missing() and all(
                m.ready.is_set() for m in mirrors):
            ttl_ms = int(settings.heartbeat_interval_s * HEARTBEAT_TTL_FACTOR * 1000)
            try:
                await redis.set(redis_keys.worker_heartbeat(), settings.app_id, px=ttl_ms)
            except RedisError as exc:  # an exception in a timer would stop the whole app
                log.warning("heartbeat not written (Redis unavailable): %s", exc)

    return Worker(app=app, settings=settings, metrics=metrics, redis=redis, models=models,
                  mirrors=mirrors, pipeline=pipeline, wards=wards,
                  sendable=sendable)

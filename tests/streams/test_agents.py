"""The worker's agents through faust's ``agent.test_context()``: no Kafka, real Redis.

``put(wait=True)`` returns once a record is handed to the batch buffer, not once the batch
is processed, so each test waits for the batch's effect (polling, never a fixed sleep).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from faust.types import TP

from detectors.declaration_alerts import declaration_alert
from detectors.flags import FlagPolicy, flags_of
from streams.app import Worker, create_worker
from streams.config import WorkerSettings
from streams.faust_fixes import SeekFirstRecovery, commit_processed, committed_offset
from streams.pipeline import PartitionClock
from tests.factories import T0, declaration_event
from tests.streams.conftest import RecordingProducer
from vhc_common import redis_keys
from vhc_common.alert_view import AlertView
from vhc_common.alert_view import _key as alert_key
from vhc_common.partitioning import partition_for, partition_key
from vhc_common.schemas import AlertEvent, Contact, PersonRef
from vhc_common.topics import ALERTS, DEADLETTER, DECLARATIONS

PARTITIONS = 4


@pytest.fixture
def worker(redis_url: str, tmp_path: Path) -> tuple[Worker, RecordingProducer]:
    redis.Redis.from_url(redis_url).flushdb()
    built = create_worker(WorkerSettings(kafka_bootstrap="127.0.0.1:1", redis_url=redis_url,
                                         metrics_port=0, data_dir=tmp_path,
                                         partitions=PARTITIONS, batch_within_s=0.05))
    producer = RecordingProducer(PARTITIONS)
    built.app.producer = producer
    for mirror in built.mirrors:
        mirror.ready.set()  # no broker: an empty registry and no outbreak areas
    return built, producer


async def eventually(check: Callable[[], bool | Awaitable[bool]],
                     timeout_s: float = 10.0) -> None:
    """Poll ``check`` (sync or async) until it holds."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if await result if inspect.isawaitable(result) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def symptomatic(minute: int, who: int, cp: str = "PY-XH-CHO") -> bytes:
    event = declaration_event(scanned_at=T0 + timedelta(minutes=minute), checkpoint_id=cp,
                              received_at=T0 + timedelta(minutes=minute, seconds=1),
                              symptoms=("cough",), person=PersonRef(key=f"{who:032x}"))
    return event.model_dump_json().encode()


def processed(redis_url: str, partition: int) -> int:
    raw = redis.Redis.from_url(redis_url).hget(redis_keys.processed_offsets(), partition)
    return int(raw) if raw else 0


async def test_declarations_raise_alerts_and_update_tables_and_views(
    worker: tuple[Worker, RecordingProducer], redis_url: str,
) -> None:
    w, producer = worker
    partition = partition_for(b"PY-XH-CHO", PARTITIONS)
    records = [(b"PY-XH-CHO", symptomatic(i, i)) for i in range(3)]
    records.append((b"PY-XH-CHO", b"not json"))
    async with w.app.agents["process-declarations"].test_context() as ctx:
        for key, value in records:
            await ctx.put(value, key=key, partition=partition)
        await eventually(lambda: processed(redis_url, partition) == 4)

    kinds = sorted(json.loads(v)["kind"] for _, v, _, _ in producer.to(ALERTS))
    assert kinds == ["symptom_cluster"] + ["symptomatic_declaration"] * 3
    ((_key, value, _, headers),) = producer.to(DEADLETTER)
    assert value == b"not json" and headers["vhc-source-offset"] == b"3"
    # Table writes go to the checkpoint's partition, whatever batch they came from.
    changelog = [(k, p) for t, k, _, p, _ in producer.sent if t.endswith("-changelog")]
    assert b'"PY-XH-CHO"' in {k for k, _ in changelog}  # faust writes str keys as JSON
    assert {p for k, p in changelog if k.startswith(b'"PY-XH-CHO')} == {partition}
    assert "PY-XH-CHO" in w.app.tables["checkpoint-state-v2"]
    store = redis.Redis.from_url(redis_url)
    assert store.exists(redis_keys.stats_last("PY-XH-CHO"))
    assert store.zcard(redis_keys.visits_at("PY-XH-CHO")) == 3


async def test_a_redelivered_batch_raises_nothing_again(
    worker: tuple[Worker, RecordingProducer], redis_url: str,
) -> None:
    w, producer = worker
    partition = partition_for(b"PY-XH-CHO", PARTITIONS)
    agent = w.app.agents["process-declarations"]
    records = [(b"PY-XH-CHO", symptomatic(i, i)) for i in range(3)]
    async with agent.test_context() as ctx:
        for key, value in records:
            await ctx.put(value, key=key, partition=partition)
        await eventually(lambda: processed(redis_url, partition) == 3)
    first = len(producer.to(ALERTS))
    redis.Redis.from_url(redis_url).hdel(redis_keys.processed_offsets(), partition)
    # A new context numbers from offset 0 again: the same records at the same offsets,
    # as after a crash before the offsets were committed.
    async with agent.test_context() as ctx:
        for key, value in records:
            await ctx.put(value, key=key, partition=partition)
        await eventually(lambda: processed(redis_url, partition) == 3)
    assert first == 4 and len(producer.to(ALERTS)) == 4


async def test_alerts_are_stored_once(worker: tuple[Worker, RecordingProducer],
                                      redis_url: str) -> None:
    w, producer = worker
    partition = partition_for(b"PY-XH-CHO", PARTITIONS)
    async with w.app.agents["process-declarations"].test_context() as ctx:
        for i in range(3):
            await ctx.put(symptomatic(i, i), key=b"PY-XH-CHO", partition=partition)
        await eventually(lambda: len(producer.to(ALERTS)) == 4)
    alerts = [v for _, v, _, _ in producer.to(ALERTS)]
    view = AlertView(redis.asyncio.Redis.from_url(redis_url), retention_s=3600)
    async with w.app.agents["store-alerts"].test_context() as ctx:
        for value in alerts * 2:
            last = await ctx.put(value, key=b"PY-XH-CHO", partition=0)

        async def stored() -> bool:
            return len(await view.page(before_seq=None, batch=100)) >= 4

        await eventually(stored)
    assert len(await view.page(before_seq=None, batch=100)) == 4  # each once, sent twice
    # How far the view got is kept with it: a restarted worker whose group commit is past
    # alerts never stored seeks back to them.
    client = redis.Redis.from_url(redis_url)
    await eventually(lambda: client.hget(redis_keys.alert_view_offsets(), "0")
                     == str(last.message.offset + 1).encode())
    first = AlertEvent.model_validate_json(alerts[0])
    stored_alert = await view.get(first.alert_id)
    assert stored_alert is not None and stored_alert["status"] == "open"


async def test_ticks_move_a_live_partition_to_the_wall_clock(
    worker: tuple[Worker, RecordingProducer], redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once the partition's declarations are all processed, as the consumer's highwater
    says: before, a tick is held (``Pipeline.tick``)."""
    w, _ = worker
    partition = partition_for(b"PY-XH-CHO", PARTITIONS)
    tp = TP(DECLARATIONS, partition)
    heard: dict[TP, int | None] = {tp: 2}  # a second declaration waits
    monkeypatch.setattr(w.app.consumer, "assignment", lambda: set(heard))
    monkeypatch.setattr(w.app.consumer, "highwater", heard.get)
    key = partition_key(partition, PARTITIONS, "clock")
    table: Any = w.app.tables["stream-clock-v2"]
    # A live declaration (received a second after it was scanned), then silence.
    live = declaration_event(scanned_at=T0, received_at=T0 + timedelta(seconds=1),
                             contact=Contact.F0)
    async with w.app.agents["process-declarations"].test_context() as ctx:
        await ctx.put(live.model_dump_json().encode(), key=b"PY-XH-CHO", partition=partition)
        await eventually(lambda: processed(redis_url, partition) == 1)
    before = PartitionClock.decode(table.get(key)).live_ms
    wall_ms = before + 3 * 3_600_000
    def held() -> float | None:
        return w.metrics.registry.get_sample_value("vhc_worker_ticks_held_total")

    async with w.app.agents["process-ticks"].test_context() as ctx:
        await ctx.put(json.dumps({"wall_ms": wall_ms}).encode(), key=b"", partition=partition)
        await eventually(lambda: held() == 1)
        assert PartitionClock.decode(table.get(key)).live_ms == before
        heard[tp] = 1  # the consumer heard of nothing past the one processed
        await ctx.put(json.dumps({"wall_ms": wall_ms}).encode(), key=b"", partition=partition)
        await eventually(lambda: PartitionClock.decode(table.get(key)).live_ms > before)
    assert PartitionClock.decode(table.get(key)).live_ms == wall_ms - 30_000
    assert held() == 1


async def complete_recovery(app: Any, monkeypatch: pytest.MonkeyPatch, calls: list[str],
                            assignment: set[TP], **consumer: Any) -> None:
    """faust's recovery completing (``SeekFirstRecovery.on_recovery_completed``) with the
    consumer's ``assignment`` and the ``consumer`` methods given; resuming partitions and
    starting the fetcher are recorded in ``calls``."""
    recovery = app.tables.recovery
    assert isinstance(recovery, SeekFirstRecovery)

    async def maybe_start() -> None:
        calls.append("fetch")

    monkeypatch.setattr(app.consumer, "assignment", lambda: assignment)
    for name, method in consumer.items():
        monkeypatch.setattr(app.consumer, name, method)
    monkeypatch.setattr(app.consumer, "resume_partitions",
                        lambda tps: calls.append(f"resume {sorted(tps)}"))
    monkeypatch.setattr(app._fetcher, "maybe_start", maybe_start)
    await recovery.on_recovery_completed(app.consumer_generation_id)


async def test_stream_partitions_are_sought_before_they_are_resumed(
    worker: tuple[Worker, RecordingProducer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """faust 0.15 resumed them first: records fetched in between were skipped for good
    (``streams.faust_fixes``). Their positions are reported to the offset guards."""
    w, _ = worker
    calls: list[str] = []

    async def perform_seek() -> None:
        calls.append("seek")

    async def position(_tp: TP) -> int:
        calls.append("position")
        return 123

    async def earliest_offsets(*tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 123)  # never committed: it starts at the earliest

    tp = TP(DECLARATIONS, 0)
    await complete_recovery(w.app, monkeypatch, calls, {tp}, perform_seek=perform_seek,
                            position=position, earliest_offsets=earliest_offsets)
    assert calls == ["seek", "position", "position", f"resume {[tp]}", "fetch"]
    # Where it was sought is the record the pipeline expects first.
    assert w.pipeline.offsets.expects(0, -1) == 123


def moving_consumer(positions: dict[TP, int], calls: list[str]) -> dict[str, Any]:
    """A consumer's position, seeks (recorded in ``calls``) and earliest offsets (0), over
    ``positions``, for ``complete_recovery``."""

    async def seek_wait(sought: dict[TP, int]) -> None:
        calls.append(f"seek_wait {sorted(sought.items())}")
        positions.update(sought)

    async def position(at: TP) -> int:
        return positions[at]

    async def earliest_offsets(*tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 0)

    return {"seek_wait": seek_wait, "position": position, "earliest_offsets": earliest_offsets}


async def test_a_stream_partition_that_moved_while_being_sought_is_sought_again(
    worker: tuple[Worker, RecordingProducer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Records taken from the consumer while ``perform_seek`` waits for the committed
    offsets never reach the stream (seen in 6/7 after a restart: position 8 after the
    seek, 5 committed): sought to the committed offset again before it is resumed."""
    w, _ = worker
    calls: list[str] = []
    tp, idle = TP(DECLARATIONS, 1), TP(DECLARATIONS, 2)
    positions = {tp: 5, idle: 0}
    committed: dict[TP, int] = w.app.consumer._committed_offset

    async def perform_seek() -> None:
        calls.append("seek")
        committed[tp] = 5  # what faust's perform_seek records
        positions[tp] = 8  # three records taken meanwhile

    await complete_recovery(w.app, monkeypatch, calls, {tp, idle}, perform_seek=perform_seek,
                            **moving_consumer(positions, calls))
    assert calls == ["seek", f"seek_wait {[(tp, 5)]}", f"resume {sorted([tp, idle])}",
                     "fetch"]
    assert w.pipeline.offsets.expects(1, -1) == 5


async def test_a_never_committed_partition_that_moved_is_sought_to_its_earliest(
    worker: tuple[Worker, RecordingProducer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """6/7's tenth round: a partition whose first 20 records came during the rebalance,
    with no commit yet, was at position 20 once sought; reported there, its records were
    taken as before the start and never processed, and the stall watch saw nothing to
    wait for. It is sought to the log's earliest offset, where the consumer starts it."""
    w, _ = worker
    calls: list[str] = []
    tp = TP(DECLARATIONS, 0)
    positions = {tp: 0}

    async def perform_seek() -> None:
        calls.append("seek")
        positions[tp] = 20  # the 20 records taken meanwhile; nothing committed

    assert w.app.consumer._committed_offset.get(tp) is None
    await complete_recovery(w.app, monkeypatch, calls, {tp}, perform_seek=perform_seek,
                            **moving_consumer(positions, calls))
    assert calls == ["seek", f"seek_wait {[(tp, 0)]}", f"resume {[tp]}", "fetch"]
    assert w.pipeline.offsets.expects(0, -1) == 0


async def test_a_stuck_commit_is_committed_from_what_was_processed(
    worker: tuple[Worker, RecordingProducer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """faust commits from the head of its acknowledgements; a hole there (offset 7, 8
    never acknowledged) stops it. The worker commits what it processed and faust's
    bookkeeping goes on from there."""
    w, _ = worker
    consumer: Any = w.app.consumer
    tp = TP(DECLARATIONS, 1)
    committed: list[dict[TP, int]] = []

    async def commit_offsets(offsets: dict[TP, int], **_: Any) -> bool:
        committed.append(offsets)
        consumer._committed_offset.update(offsets)
        return True

    monkeypatch.setattr(consumer, "_commit_offsets", commit_offsets)
    consumer._committed_offset[tp] = 5
    consumer._acked[tp] = [5, 6, 9, 10, 11]
    consumer._acked_index[tp] = {5, 6, 9, 10, 11}
    assert consumer._new_offset(tp) == 7  # faust: up to the hole, never past it
    consumer._committed_offset[tp] = 7
    assert consumer._new_offset(tp) is None
    await commit_processed(w.app, {tp: 10})
    assert committed == [{tp: 10}] and committed_offset(w.app, tp) == 10
    assert consumer._acked[tp] == [10, 11] and consumer._acked_index[tp] == {10, 11}
    assert consumer._new_offset(tp) == 12


async def test_an_alert_stored_but_never_listed_is_repaired(redis_url: str) -> None:
    """The three-step writer before the script: SET, then INCR, then ZADD/XADD. A crash
    after the SET left a stored alert that every replay skipped, never listed or
    streamed; now a replay lists and streams it, and keeps what staff did to it."""
    store = redis.asyncio.Redis.from_url(redis_url)
    await store.flushdb()
    view = AlertView(store, retention_s=3600)
    alert = AlertEvent.model_validate_json(symptomatic_alert())
    half_written = alert.model_dump(mode="json") | {"status": "acknowledged", "history": [
        {"status": "acknowledged", "note": "seen", "by": "staff", "at": T0.isoformat()}]}
    await store.set(alert_key(alert.alert_id), json.dumps(half_written))
    assert await view.page(before_seq=None, batch=10) == []
    assert await view.insert(alert) is False  # not new: it was stored
    ((_seq, listed),) = await view.page(before_seq=None, batch=10)
    assert listed["alert_id"] == alert.alert_id and listed["status"] == "acknowledged"
    ((_id, streamed),) = await view.events("0-0", block_ms=1)
    assert streamed["status"] == "acknowledged"
    assert await view.insert(alert) is False  # now a plain duplicate: nothing more
    assert len(await view.events("0-0", block_ms=1)) == 1
    await store.aclose()


def symptomatic_alert() -> bytes:
    event = declaration_event(symptoms=("cough",), checkpoint_id="PY-XH-CHO")
    flags = flags_of(event, outbreak_areas=frozenset(), policy=FlagPolicy())
    alert = declaration_alert(event, flags, outbreak_areas=frozenset(), ward_code="08749")
    assert alert is not None
    return alert.model_dump_json().encode()


async def test_an_agent_error_stops_the_worker_at_once_without_a_commit(
    worker: tuple[Worker, RecordingProducer], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """faust's own handler commits and restarts the agent in place (acking the failed
    batch); the worker's stops the process, like a SIGKILL the crash tests cover."""
    w, _ = worker
    handler = w.app._on_agent_error
    assert all(agent._on_error is handler for agent in w.app.agents.values())
    exits: list[int] = []
    monkeypatch.setattr("os._exit", exits.append)
    commits: list[Any] = []
    monkeypatch.setattr(type(w.app.consumer), "commit",
                        lambda self, *a, **k: commits.append(a))

    def failing(checkpoint_id: str) -> Any:
        raise RuntimeError("a bug in the batch")

    # the registry look-up the batch body makes for each declaration's checkpoint (the
    # pipeline's methods cannot be replaced: it is compiled, see README "Compiled")
    monkeypatch.setattr(w.pipeline, "_info", failing)
    agent = w.app.agents["process-declarations"]
    async with agent.test_context(on_error=handler) as ctx:
        await ctx.put(symptomatic(0, 1), key=b"PY-XH-CHO", partition=0)
        await eventually(lambda: bool(exits))
    assert exits == [70] and commits == []
    (record,) = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert "process-declarations" in record.getMessage()
    assert record.exc_info and "a bug in the batch" in str(record.exc_info[1])


@pytest.mark.parametrize("replicas", [0, 1])
def test_the_standby_replicas_setting_reaches_faust(redis_url: str, tmp_path: Path,
                                                    replicas: int) -> None:
    built = create_worker(WorkerSettings(kafka_bootstrap="127.0.0.1:1", redis_url=redis_url,
                                         metrics_port=0, data_dir=tmp_path,
                                         standby_replicas=replicas))
    assert built.app.conf.table_standby_replicas == replicas


def test_workers_keep_no_standby_tables_by_default() -> None:
    """A standby costs a worker about what processing the records costs (README, Scaling
    workers): two workers went no faster than one with faust's default of 1."""
    assert WorkerSettings(kafka_bootstrap="x:1", redis_url="redis://x").standby_replicas == 0

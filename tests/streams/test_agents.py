"""The worker's agents through faust's ``agent.test_context()``: no Kafka, real Redis."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from streams.app import Worker, create_worker
from streams.clock import StreamClock
from streams.config import WorkerSettings
from tests.factories import T0, declaration_event
from tests.streams.conftest import RecordingProducer
from vhc_common import redis_keys
from vhc_common.alert_view import AlertView
from vhc_common.partitioning import partition_for
from vhc_common.schemas import AlertEvent, PersonRef
from vhc_common.topics import ALERTS, DEADLETTER

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


def symptomatic(minute: int, who: int, cp: str = "PY-XH-CHO") -> bytes:
    event = declaration_event(scanned_at=T0 + timedelta(minutes=minute), checkpoint_id=cp,
                              symptoms=("cough",), person=PersonRef(key=f"{who:032x}"))
    return event.model_dump_json().encode()


async def run(agent: Any, records: list[tuple[bytes, bytes]], partition: int) -> None:
    async with agent.test_context() as ctx:
        for key, value in records:
            await ctx.put(value, key=key, partition=partition)
        await asyncio.sleep(0.3)  # take_events hands over a batch after batch_within_s


async def test_declarations_raise_alerts_and_update_tables_and_views(
    worker: tuple[Worker, RecordingProducer], redis_url: str,
) -> None:
    w, producer = worker
    partition = partition_for(b"PY-XH-CHO", PARTITIONS)
    records = [(b"PY-XH-CHO", symptomatic(i, i)) for i in range(3)]
    records.append((b"PY-XH-CHO", b"not json"))
    await run(w.app.agents["process-declarations"], records, partition)

    kinds = [json.loads(v)["kind"] for _, v, _, _ in producer.to(ALERTS)]
    assert sorted(kinds) == ["symptom_cluster"] + ["symptomatic_declaration"] * 3
    ((_key, value, _, headers),) = producer.to(DEADLETTER)
    assert value == b"not json" and headers["vhc-source-offset"] == b"3"
    # Table writes go to the checkpoint's partition, whatever batch they came from.
    changelog = [(k, p) for t, k, _, p, _ in producer.sent if t.endswith("-changelog")]
    assert {k for k, _ in changelog} >= {b'"PY-XH-CHO"', b'"PY-XH-CHO|498800"'}  # faust: JSON
    assert {p for _, p in changelog} == {partition}
    assert "PY-XH-CHO" in w.app.tables["detector-state-v1"]
    store = redis.Redis.from_url(redis_url)
    assert store.hget(redis_keys.processed_offsets(), partition) == b"4"
    assert store.exists(redis_keys.stats_last("PY-XH-CHO"))
    assert store.zcard(redis_keys.visits_at("PY-XH-CHO")) == 3


async def test_replayed_records_raise_nothing_again(
    worker: tuple[Worker, RecordingProducer],
) -> None:
    w, producer = worker
    partition = partition_for(b"PY-XH-CHO", PARTITIONS)
    agent = w.app.agents["process-declarations"]
    records = [(b"PY-XH-CHO", symptomatic(i, i)) for i in range(3)]
    async with agent.test_context() as ctx:
        for key, value in records:
            await ctx.put(value, key=key, partition=partition)
        await asyncio.sleep(0.3)
        first = len(producer.to(ALERTS))
        # The same records at the same offsets (a replay after a crash).
        ctx.sent_offset = 0
        for key, value in records:
            await ctx.put(value, key=key, partition=partition)
        await asyncio.sleep(0.3)
    assert first == 4 and len(producer.to(ALERTS)) == 4


async def test_alerts_are_stored_once(worker: tuple[Worker, RecordingProducer],
                                      redis_url: str) -> None:
    w, _ = worker
    agent = w.app.agents["process-declarations"]
    producer = w.app.producer
    await run(agent, [(b"PY-XH-CHO", symptomatic(i, i)) for i in range(3)],
              partition_for(b"PY-XH-CHO", PARTITIONS))
    alerts = [v for _, v, _, _ in producer.to(ALERTS)]  # type: ignore[attr-defined]
    await run(w.app.agents["store-alerts"], [(b"PY-XH-CHO", v) for v in alerts * 2], 0)
    view = AlertView(redis.asyncio.Redis.from_url(redis_url), retention_s=3600)
    page = await view.page(before_seq=None, batch=100)
    assert len(page) == 4  # each alert once, though sent twice
    first = AlertEvent.model_validate_json(alerts[0])
    stored = await view.get(first.alert_id)
    assert stored is not None and stored["status"] == "open"


async def test_ticks_move_a_live_idle_partition_to_the_wall_clock(
    worker: tuple[Worker, RecordingProducer],
) -> None:
    w, _ = worker
    partition = partition_for(b"PY-XH-CHO", PARTITIONS)
    # A live declaration (received right after it was scanned), then silence.
    await run(w.app.agents["process-declarations"], [(b"PY-XH-CHO", symptomatic(0, 1))],
              partition)
    clock = StreamClock(w.app.tables["stream-clock-v1"], partitions=PARTITIONS)
    before = clock.get(partition).stream_time_ms
    wall_ms = before + 3 * 3_600_000
    await run(w.app.agents["process-ticks"],
              [(b"", json.dumps({"wall_ms": wall_ms}).encode())], partition)
    assert clock.get(partition).stream_time_ms == wall_ms - 30_000

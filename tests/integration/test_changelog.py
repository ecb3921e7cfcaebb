"""``streams.changelog.BatchedTable`` against the real broker: what faust would have written
to the changelog, a batch at a time.

The table's app is not started (no consumer group, no recovery); its producer is a real
aiokafka producer with the worker's co-partitioner, and the changelog topic is read back
with a plain consumer.
"""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.serializers import codecs
from faust.types import TP

from deploy.localsvc import KafkaBroker
from streams.changelog import BatchedTable, ChangelogError, batched_changelogs, flush_changelogs
from vhc_common.partitioning import composite_key, copartitioner, partition_for

PARTITIONS = 4


class _Store(dict[TP, int]):
    """Stands in for the table's store's persisted-offset bookkeeping (RocksDB's)."""


async def _changelog(bootstrap: str, topic: str) -> list[tuple[int, int, bytes, bytes | None]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TP(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[int, int, bytes, bytes | None]] = []
        while len(out) < sum(ends.values()):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out += [(r.partition, r.offset, r.key, r.value) for r in records]
        return sorted(out)
    finally:
        await consumer.stop()


async def _with_table(bootstrap: str, value_type: type, body: Any) -> Any:
    app = faust.App(f"changelog-test-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}",
                    key_serializer="raw", value_serializer="raw", store="memory://",
                    Table=BatchedTable)
    table = app.Table("state", key_type=str, value_type=value_type, partitions=PARTITIONS,
                      use_partitioner=True)
    topic = table.changelog_topic.get_topic_name()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    # A small batch size: a flush has to split a partition's records over several batches.
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, partitioner=copartitioner,
                             acks="all", max_batch_size=1024, linger_ms=5)
    await kafka.start()
    stored = _Store()
    table.data.set_persisted_offset = stored.__setitem__
    app.producer = SimpleNamespace(_ensure_producer=lambda: kafka)
    try:
        await body(app, table)
        await kafka.flush()
        return topic, stored, await _changelog(bootstrap, topic)
    finally:
        await kafka.stop()


def test_latest_value_of_each_key_on_its_checkpoints_partition(kafka: KafkaBroker) -> None:
    keys = [composite_key(f"PY-{i:03d}", 490_000 + i % 3) for i in range(60)]

    async def body(app: faust.App, table: BatchedTable) -> None:
        for round_ in range(3):  # three writes of each key before one flush
            for i, key in enumerate(keys):
                table[key] = f"{key} v{round_} {'x' * (i * 20)}".encode()
        del table[keys[0]]
        table["Hà Nội|1"] = "é".encode()
        assert table.dirty == len(keys) + 1
        await flush_changelogs(app)
        assert table.dirty == 0

    topic, stored, records = asyncio.run(_with_table(kafka.bootstrap, bytes, body))
    latest = {key: value for _, _, key, value in records}
    assert len(records) == len(latest) == len(keys) + 1  # one record per key, no repeats
    for partition, _, key, _ in records:
        assert partition == partition_for(key, PARTITIONS)
    assert latest[b'"' + keys[0].encode() + b'"'] is None  # the delete: a tombstone
    assert latest[b'"' + keys[5].encode() + b'"'] == f"{keys[5]} v2 {'x' * 100}".encode()
    assert latest[codecs.dumps("json", "Hà Nội|1")] == "é".encode()  # faust's key codec
    # The store was told the newest offset of each partition, as faust's callback does.
    newest = {p: max(o for q, o, _, _ in records if q == p) for p, _, _, _ in records}
    assert stored == {TP(topic, p): o for p, o in newest.items()}


def test_str_values_as_faust_writes_them(kafka: KafkaBroker) -> None:
    """Same bytes as faust's own changelog path (its topic's ``prepare_key`` and
    ``prepare_value`` with the table's serializers)."""
    values = {"A|1": 'plain', "B|2": 'quote " and é', "C|3": '{"json": [1, 2]}'}
    expected: dict[bytes, bytes | None] = {}

    async def body(app: faust.App, table: BatchedTable) -> None:
        ct = table.changelog_topic
        for key, value in values.items():
            table[key] = value
            k, _ = ct.prepare_key(key, table.key_serializer, None)
            v, _ = ct.prepare_value(value, table.value_serializer, None)
            expected[k] = v
        await asyncio.sleep(0)  # not flushed by hand: the task the first write scheduled
        assert table.dirty == 0
        await table.flush_changelog()  # (waits for that task's sends: nothing left to send)

    _, _, records = asyncio.run(_with_table(kafka.bootstrap, str, body))
    assert {k: v for _, _, k, v in records} == expected


def test_producer_flush_sends_pending_records_first(kafka: KafkaBroker) -> None:
    """faust flushes its producer before committing offsets: the hook sends what the
    tables hold first, so no commit runs ahead of the changelog."""
    flushed: list[int] = []

    async def body(app: faust.App, table: BatchedTable) -> None:
        async def producer_flush() -> None:
            flushed.append(table.dirty)

        app.producer.flush = producer_flush
        batched_changelogs(app)
        table._scheduled = asyncio.get_running_loop().create_future()  # no automatic flush
        table["K|1"] = b"1"
        await app.producer.flush()
        assert flushed == [0]

    _, _, records = asyncio.run(_with_table(kafka.bootstrap, bytes, body))
    assert [(k, v) for _, _, k, v in records] == [(b'"K|1"', b"1")]


def test_a_refused_batch_fails_the_next_write(kafka: KafkaBroker) -> None:
    """A record the broker refuses (too large for the topic) is not silently dropped: the
    error comes back at the next write and at the next flush."""

    async def body(app: faust.App, table: BatchedTable) -> None:
        crashed: list[BaseException] = []

        async def crash(reason: BaseException) -> None:
            crashed.append(reason)

        app.crash = crash
        table["big|1"] = b"x" * (2 * 1024 * 1024)  # over the broker's 1 MiB default
        await table.flush_changelog()
        await app.producer._ensure_producer().flush()
        await asyncio.sleep(0.05)
        assert [type(c) for c in crashed] == [ChangelogError]  # the worker stops
        with pytest.raises(ChangelogError):
            table["small|1"] = b"y"
        with pytest.raises(ChangelogError):
            await table.flush_changelog()  # so no commit runs past the lost record
        assert "small|1" not in table

    asyncio.run(_with_table(kafka.bootstrap, bytes, body))

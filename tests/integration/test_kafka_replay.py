"""Reading a topic back (``vhc_common.kafka_replay``), on the session's real broker: the
records below the given offsets, in order, and nothing at once when there is nothing to
read (a replay of nothing used to hang in aiokafka's ``stop``, and with it the worker's
first rebuild of its Redis views)."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaProducer

from deploy.localsvc import KafkaBroker
from vhc_common.kafka_admin import ensure_topics
from vhc_common.kafka_replay import replay_topic
from vhc_common.topics import TopicSpec


async def _topic_with(bootstrap: str, values: dict[int, list[bytes]]) -> str:
    topic = f"replay-test-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [TopicSpec(topic, 3)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, items in values.items():
            for value in items:
                await producer.send_and_wait(topic, value, partition=partition)
    finally:
        await producer.stop()
    return topic


def test_a_replay_reads_below_the_offsets_and_nothing_at_once(kafka: KafkaBroker) -> None:
    async def scenario() -> None:
        values = {0: [b"a0", b"a1", b"a2"], 1: [b"b0", b"b1"], 2: [b"c0"]}
        topic = await _topic_with(kafka.bootstrap, values)
        seen: list[bytes] = []

        async def keep(value: bytes) -> None:
            seen.append(value)

        assert await replay_topic(kafka.bootstrap, topic, 3, keep) == 6
        assert sorted(seen) == sorted(v for vs in values.values() for v in vs)
        assert seen.index(b"a0") < seen.index(b"a1") < seen.index(b"a2")

        seen.clear()
        read = await replay_topic(kafka.bootstrap, topic, 3, keep, upto={0: 2, 1: 0, 2: 9})
        assert read == 3 and sorted(seen) == [b"a0", b"a1", b"c0"]
        assert seen.index(b"a0") < seen.index(b"a1")

        seen.clear()
        started = time.monotonic()
        nothing = await asyncio.wait_for(
            replay_topic(kafka.bootstrap, topic, 3, keep, upto={0: 0, 1: 0, 2: 0}), 10)
        assert nothing == 0 and seen == []
        assert time.monotonic() - started < 1

    asyncio.run(scenario())

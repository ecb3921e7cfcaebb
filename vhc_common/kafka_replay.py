"""Reading a topic from its beginning to its end (rebuilding a view from its source)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from vhc_common.kafka_security import client_options

__all__ = ["replay_topic"]


async def replay_topic(bootstrap: str, topic: str, partitions: int,
                       handle: Callable[[bytes], Awaitable[None]], *,
                       upto: Mapping[int, int] | None = None) -> int:
    """Call ``handle`` with every non-tombstone value present when the call starts, in
    offset order per partition; returns how many. No consumer group, nothing committed.
    ``partitions`` comes from our own topic specs (``vhc_common.topics``). With ``upto``
    (partition -> offset), only those partitions, and only records below that offset."""
    tps = [TopicPartition(topic, p) for p in range(partitions)
           if upto is None or upto.get(p, 0) > 0]
    if not tps:
        # Before the consumer starts: aiokafka's ``stop`` of a consumer never assigned
        # waits forever (a replay of nothing hung, and with it the rebuild after it).
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                                enable_auto_commit=False, **client_options())
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = dict(await consumer.end_offsets(tps))
        if upto is not None:
            end = {tp: min(offset, upto[tp.partition]) for tp, offset in end.items()}
        seen = 0
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for record in records:
                    if record.value is not None and record.offset < end[tp]:
                        await handle(record.value)
                        seen += 1
        return seen
    finally:
        await consumer.stop()

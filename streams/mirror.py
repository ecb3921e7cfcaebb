"""Read models of small compacted topics the worker needs everywhere.

``TopicMirror`` reads a topic from its beginning at start (no consumer group: every worker
sees every record) and then follows it, calling ``apply`` for each record in order.
``ready`` is set once the records present at start have been applied, so the agents can
wait for a complete registry and outbreak-area history before judging declarations.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from vhc_common.kafka_security import client_options

__all__ = ["TopicMirror"]

log = logging.getLogger(__name__)


class TopicMirror:
    def __init__(self, bootstrap: str, topic: str, partitions: int,
                 apply: Callable[[bytes | None, bytes | None, int], None]) -> None:
        self.topic = topic
        self._partitions = partitions
        self.ready = asyncio.Event()
        self._bootstrap = bootstrap
        self._apply = apply

    async def run(self) -> None:
        """Mirror forever; reconnects after broker errors."""
        while True:
            consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap.split(","),
                                        enable_auto_commit=False, group_id=None,
                                        client_id=f"vhc-mirror-{self.topic}",
                                        **client_options())
            try:
                await consumer.start()
                # Our own topic specs give the partitions (vhc_common.topics): the topics
                # are created with them before any worker starts.
                tps = [TopicPartition(self.topic, p) for p in range(self._partitions)]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                end = await consumer.end_offsets(tps)
                if all(end[tp] == 0 for tp in tps):
                    self.ready.set()
                while True:
                    batches = await consumer.getmany(timeout_ms=500)
                    for records in batches.values():
                        for record in records:
                            self._apply(record.key, record.value, record.timestamp)
                    positions = [await consumer.position(tp) for tp in tps]
                    if not self.ready.is_set() and all(
                        pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)
                    ):
                        log.info("mirror of %s is complete", self.topic)
                        self.ready.set()
            except KafkaError as exc:
                log.warning("mirror of %s: %r; retrying in 2 s", self.topic, exc)
                await asyncio.sleep(2)
            finally:
                await consumer.stop()

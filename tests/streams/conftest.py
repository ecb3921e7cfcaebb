"""The streams tier: faust agents driven through ``agent.test_context()`` (no Kafka), with
a real redis-server for the views they write."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.localsvc import RedisServer


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("streams-redis")
    server = RedisServer.on_free_port("redis", root)
    server.start()
    yield server.url
    server.stop()


class RecordingProducer:
    """Stands in for faust's Kafka producer in this tier only (no broker here): it partitions
    as the real one does (``vhc_common.partitioning.copartitioner``) and records what the
    agents send. The integration tier runs the same agents against a real broker."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None, Any]] = []

    def key_partition(self, topic: str, key: bytes) -> Any:
        from faust.types import TP

        from vhc_common.partitioning import partition_for

        return TP(topic, partition_for(key, self.partitions))

    def send_soon(self, fut: Any) -> None:
        m = fut.message
        self.sent.append((m.channel.get_topic_name(), m.key, m.value, m.partition, m.headers))
        fut.set_result(None)

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None, headers: Any,
                   **_: Any) -> Any:
        self.sent.append((topic, key, value, partition, headers))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def maybe_start(self) -> None:
        """Nothing to start: there is no broker in this tier."""

    def to(self, topic: str) -> list[tuple[bytes | None, bytes | None, int | None, Any]]:
        return [(k, v, p, h) for t, k, v, p, h in self.sent if t == topic]

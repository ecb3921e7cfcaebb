"""The broker and Redis every benchmark runs against: started on free ports under
``root``, the project's topics created, both stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.localsvc import KafkaBroker, RedisServer
from vhc_common.kafka_admin import ensure_topics
from vhc_common.topics import topic_specs


@contextmanager
def broker_and_redis(root: Path, *, partitions: int = 4) -> Iterator[tuple[KafkaBroker,
                                                                            RedisServer]]:
    kafka = KafkaBroker.on_free_ports("kafka", root)
    cache = RedisServer.on_free_port("redis", root)
    kafka.start()
    cache.start()
    try:
        ensure_topics(kafka.bootstrap, topic_specs(partitions=partitions, retention_days=21))
        yield kafka, cache
    finally:
        cache.stop()
        kafka.stop()

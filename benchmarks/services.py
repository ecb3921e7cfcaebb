"""The broker and Redis every benchmark runs against: started on free ports under
``root``, the project's topics created, both stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from deploy.localsvc import KafkaBroker, RedisServer
from vhc_common.kafka_admin import ensure_topics
from vhc_common.topics import topic_specs

#: Kafka's default ``group.initial.rebalance.delay.ms``
REBALANCE_DELAY_MS = 3000


@contextmanager
def broker_and_redis(root: Path, *, partitions: int = 4) -> Iterator[tuple[KafkaBroker,
                                                                            RedisServer]]:
    # Kafka's default initial rebalance delay (3 s), not the tests' 0: two workers started
    # together then join one generation. With 0 the second one's join came, in some turns,
    # just after the coordinator had formed the group with the first alone; the first then
    # processed alone until its next heartbeat (3 s), and the rebalance that followed kept
    # it from its partitions for another second or two (its batch in hand finished and
    # delivered). In one series of six turns two workers went at 13,932, 9,574 and 13,071
    # records a second, the slow turn the one whose second join came 3.4 s after the first.
    kafka = replace(KafkaBroker.on_free_ports("kafka", root),
                    initial_rebalance_delay_ms=REBALANCE_DELAY_MS)
    cache = RedisServer.on_free_port("redis", root)
    kafka.start()
    cache.start()
    try:
        ensure_topics(kafka.bootstrap, topic_specs(partitions=partitions, retention_days=21))
        yield kafka, cache
    finally:
        cache.stop()
        kafka.stop()

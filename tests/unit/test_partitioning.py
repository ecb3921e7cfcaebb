"""Co-partitioning: table keys of a checkpoint land on the checkpoint's partition."""

from __future__ import annotations

import json

import pytest
from aiokafka.partitioner import DefaultPartitioner as AioDefault
from kafka.partitioner.default import DefaultPartitioner as KafkaPythonDefault

from vhc_common.partitioning import composite_key, copartitioner, partition_for


class Cluster:
    """The slice of kafka-python's ClusterMetadata its partitioner reads."""

    def __init__(self, n: int) -> None:
        self.n = n

    def topics(self) -> set[str]:
        return {"declarations.v1"}

    def partitions_for_topic(self, _: str) -> set[int]:
        return set(range(self.n))

    def available_partitions_for_topic(self, _: str) -> set[int]:
        return set(range(self.n))


def kafka_python_partition(key: bytes, n: int) -> int:
    """Where the ingest's kafka-python producer puts ``key``."""
    return int(KafkaPythonDefault().partition("declarations.v1", key, key, None, None,
                                              Cluster(n)))


KEYS = [b"PY-XH-CHO", b"PY-PY-SIEUTHI", b"CP-08749-abcd1234", b"a", b"x" * 64, "Chợ".encode()]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("n", [1, 4, 8, 13])
def test_kafka_python_and_aiokafka_agree(key: bytes, n: int) -> None:
    partitions = list(range(n))
    ingest_side = kafka_python_partition(key, n)
    worker_side = AioDefault()(key, partitions, partitions)
    assert ingest_side == worker_side == partition_for(key, n)


@pytest.mark.parametrize("key", KEYS)
def test_composite_keys_follow_their_checkpoint(key: bytes) -> None:
    partitions = list(range(8))
    own = kafka_python_partition(key, 8)
    for hour in (0, 493_000, 493_001):
        composite = composite_key(key.decode(), hour).encode()
        assert copartitioner(composite, partitions, partitions) == own


# Known answers from Kafka's Java client 4.1.1:
# Utils.toPositive(Utils.murmur2(key.getBytes("UTF-8"))) % partitions
JAVA_PARTITIONS = [
    (b"PY-XH-CHO", 4, 1), (b"PY-XH-CHO", 8, 5),
    (b"PY-PY-SIEUTHI", 8, 0), (b"CP-08749-abcd1234", 4, 0), (b"a", 8, 4),
]


@pytest.mark.parametrize(("key", "n", "java"), JAVA_PARTITIONS)
def test_same_partition_as_the_java_client(key: bytes, n: int, java: int) -> None:
    assert partition_for(key, n) == java
    assert partition_for(composite_key(key.decode(), 493_123).encode(), n) == java
    # faust writes str table keys as JSON: they must land on the same partition.
    assert partition_for(json.dumps(key.decode()).encode(), n) == java
    assert partition_for(json.dumps(composite_key(key.decode(), 1)).encode(), n) == java


def test_unkeyed_records_go_to_an_available_partition() -> None:
    assert copartitioner(None, [0, 1, 2], [2]) == 2

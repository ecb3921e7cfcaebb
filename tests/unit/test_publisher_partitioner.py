"""The ingest producer's partitioner remembers kafka-python's default answer per key: the
same partition as the default for every key and partition count, keyless records still
spread by the default."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner import DefaultPartitioner

from ingest_api.publisher import RememberingPartitioner, producer_options
from tests.unit.test_partitioning import Cluster as Metadata
from vhc_common.partitioning import partition_for


@given(keys=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=30),
       counts=st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=4))
def test_the_same_partition_as_kafka_pythons_default(keys: list[bytes],
                                                     counts: list[int]) -> None:
    remembering, default = RememberingPartitioner(), DefaultPartitioner()
    for count in counts:  # a topic whose partitions grow: the answer follows the count
        cluster = Metadata(count)
        for key in keys * 2:  # the second time from memory
            got = remembering.partition("declarations.v1", key, key, b"v", b"v", cluster)
            assert got == default.partition("declarations.v1", key, key, b"v", b"v", cluster)


def test_declarations_land_where_the_worker_expects_them() -> None:
    """The worker's co-partitioning (``vhc_common.partitioning``) assumes Kafka's default
    partitioner for checkpoint ids."""
    remembering = RememberingPartitioner()
    for i in range(500):
        key = f"PT-XH-CHO-{i:03d}".encode()
        assert remembering.partition("declarations.v1", key, key, b"", b"",
                                     Metadata(4)) == partition_for(key, 4)


def test_keyless_records_are_spread_and_memory_is_bounded() -> None:
    remembering = RememberingPartitioner()
    remembering.KEEP = 10
    seen = {remembering.partition("declarations.v1", None, None, b"", b"", Metadata(8))
            for _ in range(400)}
    assert len(seen) > 1
    for i in range(25):
        remembering.partition("declarations.v1", b"k%d" % i, b"k%d" % i, b"", b"",
                              Metadata(8))
    assert len(remembering._known) <= 10


def test_each_producer_gets_its_own_partitioner() -> None:
    assert (producer_options(timeout_s=1)["partitioner"]
            is not producer_options(timeout_s=1)["partitioner"])

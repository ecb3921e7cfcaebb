"""Co-partitioning: every record and table key about one checkpoint lands on one partition.

Declarations are keyed by ``checkpoint_id`` and partitioned with Kafka's default
partitioner (murmur2 of the key bytes, as the Java client, kafka-python and aiokafka all
do). Worker tables use composite keys such as ``"<checkpoint_id>|<hour>"``; hashing only
the part before ``|`` puts such a key on its checkpoint's partition, so a worker restores
exactly the state of the partitions it owns. ``|`` cannot occur in a checkpoint id.

faust serialises ``str`` table keys as JSON (``b'"PY-XH-CHO|493001"'``); such a key is
decoded first, so it hashes like the raw key ``PY-XH-CHO`` of the input record. Raw keys
never start with ``"`` (checkpoint ids and ward codes cannot contain it).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from functools import lru_cache

from aiokafka.partitioner import murmur2

__all__ = ["KEY_SEPARATOR", "composite_key", "copartitioner", "partition_for", "partition_key"]

KEY_SEPARATOR = "|"
_SEPARATOR = KEY_SEPARATOR.encode()


def composite_key(checkpoint_id: str, *parts: object) -> str:
    return KEY_SEPARATOR.join([checkpoint_id, *map(str, parts)])


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (prefix before ``|``)."""
    if key[:1] == b'"':
        key = json.loads(key).encode()
    return _prefix_partition(key.split(_SEPARATOR, 1)[0], partitions)


@lru_cache(maxsize=65_536)
def _prefix_partition(prefix: bytes, partitions: int) -> int:
    # Cached by checkpoint, not by whole key: the worker's keys repeat batch after batch
    # but its hour buckets' keys are new every hour, and murmur2 is pure Python in
    # aiokafka (a tenth of each changelog send).
    return int(murmur2(prefix) & 0x7FFFFFFF) % partitions


def copartitioner(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """aiokafka partitioner: Kafka's default, applied to the key's checkpoint prefix."""
    if key is None:
        return random.choice(list(available) or list(all_partitions))
    return all_partitions[partition_for(key, len(all_partitions))]


def partition_key(partition: int, partitions: int, role: str) -> str:
    """A table key that lands on ``partition`` under the co-partitioner."""
    for i in range(100_000):
        key = f"__{role}-{partition}-{i}"
        if partition_for(key.encode(), partitions) == partition:
            return key
    raise RuntimeError(f"no key for partition {partition} of {partitions}")  # pragma: no cover

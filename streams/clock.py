"""Stream time per input partition: the watermark the time-driven detectors run on.

Stream time of partition ``p`` is the newest ``scanned_at`` seen on it. In live operation
it also follows the wall clock while traffic is idle, so that silence is noticed: every
``tick_interval_s`` the worker sends a tick record into every partition of its tick topic
(co-partitioned with ``declarations.v1``); a tick moves stream time to
``wall clock - tick_lag_ms`` *only if the partition is live*, i.e. its newest declaration
was received within ``live_lag_ms`` of its ``scanned_at``. During the replay of a
recorded week (received now, scanned last week) ticks change nothing, so a pause in the
replay does not make the rest of it late, and the replay yields the alerts of the live run.

The clock and the list of checkpoints seen on each partition live in a table, under keys
chosen so that the co-partitioner puts them on that partition.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass

from vhc_common.partitioning import partition_for

__all__ = ["PartitionClock", "StreamClock", "partition_key"]


def partition_key(partition: int, partitions: int, role: str) -> str:
    """A table key that lands on ``partition`` under the co-partitioner."""
    for i in range(100_000):
        key = f"__{role}-{partition}-{i}"
        if partition_for(key.encode(), partitions) == partition:
            return key
    raise RuntimeError(f"no key for partition {partition} of {partitions}")  # pragma: no cover


@dataclass(slots=True)
class PartitionClock:
    newest_scanned_ms: int = 0
    newest_received_ms: int = 0
    tick_ms: int = 0

    @property
    def stream_time_ms(self) -> int:
        return max(self.newest_scanned_ms, self.tick_ms)


class StreamClock:
    def __init__(self, table: MutableMapping[str, str], *, partitions: int,
                 live_lag_ms: int = 600_000, tick_lag_ms: int = 30_000) -> None:
        if live_lag_ms <= 0 or tick_lag_ms < 0:
            raise ValueError(f"bad lags: live_lag_ms={live_lag_ms}, tick_lag_ms={tick_lag_ms}")
        self._table = table
        self._live_lag_ms = live_lag_ms
        self._tick_lag_ms = tick_lag_ms
        self._clock_keys = [partition_key(p, partitions, "clock") for p in range(partitions)]
        self._member_keys = [partition_key(p, partitions, "members") for p in range(partitions)]

    def get(self, partition: int) -> PartitionClock:
        raw = self._table.get(self._clock_keys[partition])
        return PartitionClock(*json.loads(raw)) if raw else PartitionClock()

    def _put(self, partition: int, clock: PartitionClock) -> None:
        self._table[self._clock_keys[partition]] = json.dumps(
            [clock.newest_scanned_ms, clock.newest_received_ms, clock.tick_ms])

    def observe(self, partition: int, scanned_ms: int, received_ms: int) -> tuple[int, int]:
        """Declarations were seen; ``(stream time before, after)``."""
        clock = self.get(partition)
        before = clock.stream_time_ms
        clock.newest_scanned_ms = max(clock.newest_scanned_ms, scanned_ms)
        clock.newest_received_ms = max(clock.newest_received_ms, received_ms)
        self._put(partition, clock)
        return before, clock.stream_time_ms

    def tick(self, partition: int, wall_ms: int) -> tuple[int, int]:
        """A tick arrived; ``(stream time before, after)``."""
        clock = self.get(partition)
        before = clock.stream_time_ms
        live = (clock.newest_received_ms > 0 and
                clock.newest_received_ms - clock.newest_scanned_ms <= self._live_lag_ms)
        if live and wall_ms - self._tick_lag_ms > clock.tick_ms:
            clock.tick_ms = wall_ms - self._tick_lag_ms
            self._put(partition, clock)
        return before, clock.stream_time_ms

    def members(self, partition: int) -> set[str]:
        raw = self._table.get(self._member_keys[partition])
        return set(json.loads(raw)) if raw else set()

    def add_members(self, partition: int, checkpoint_ids: set[str]) -> set[str]:
        """Record checkpoints seen on ``partition``; returns all of them."""
        known = self.members(partition)
        if not checkpoint_ids <= known:
            known |= checkpoint_ids
            self._table[self._member_keys[partition]] = json.dumps(sorted(known))
        return known

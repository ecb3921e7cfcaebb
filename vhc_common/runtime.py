"""Process-wide runtime settings every vhc-watch service (and each benchmark baseline)
starts with.

CPython's cyclic garbage collector runs its youngest generation every 700 net container
allocations, and every tenth of those the next one: a full pass over every long-lived
object, at most every hundredth. The worker allocates a few hundred thousand containers
a second (faust's events, futures and tasks; decoded declarations), while what it keeps
(decoded checkpoint states and hour buckets, faust's and aiokafka's own objects) is
large: at 2,000 checkpoints the collector took 3.4 s of a 17 s replay, most of it in the
older generations walking that kept state again and again. Almost all of the per-record
garbage is freed by reference counting; the collector is only for cycles.

``tune_gc`` freezes what exists at start (imports, the app: never collected again) and
runs the youngest generation every ``GC_THRESHOLDS[0]`` allocations, the older ones
correspondingly less often. Cycles are still collected, later: a few tens of megabytes
at most. Measured in ``README.md`` (Benchmark).
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc"]

#: ``gc.set_threshold`` arguments (CPython's defaults: 700, 10, 10)
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Call once, when the process has imported and built what it keeps for its life."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

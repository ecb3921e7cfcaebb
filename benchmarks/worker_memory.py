"""Worker memory: RSS with N checkpoints and M check-ins retained in its state.

``python -m benchmarks.worker_memory [--checkpoints 10000] [--checkins 1000000]``

The worker's state is its tables; faust keeps them (``VHC_STORE=memory://``) as dicts of
the same encoded values the pipeline writes. Each configuration runs in a fresh process
that imports the whole worker (faust included), builds the pipeline over dict tables and
feeds it M declarations of N checkpoints, time-ordered over the last 24 hours (so every
one of them is retained in the count buckets: the worst case), in batches of 1,000 as the
worker takes them. It prints the process's RSS before and after, and the growth per
checkpoint and per retained check-in from three configurations.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def run_one(checkpoints: int, checkins: int) -> dict[str, float]:
    """In this process: feed the pipeline and measure."""
    import streams.app  # noqa: F401 - the worker's imports, faust included, as in production
    from detectors.aberration import AberrationDetector, AberrationParams
    from detectors.cluster import ClusterDetector
    from detectors.flags import FlagPolicy
    from detectors.outbreak import OutbreakAreaHistory
    from detectors.volume import VolumeDetector
    from streams.counting import RawRecord
    from streams.pipeline import (
        UNREGISTERED,
        CheckpointInfo,
        Pipeline,
        PipelineTables,
        TimeRules,
    )
    from vhc_common.partitioning import partition_for
    from vhc_common.runtime import tune_gc

    tune_gc()  # as the worker does at start (streams.main)
    partitions = 4
    wards = [f"{w:05d}" for w in (8749, 4, 7, 10)]
    info = {f"CP-{i:05d}": CheckpointInfo(ward_code=wards[i % len(wards)], kind="shop")
            for i in range(checkpoints)}
    now = datetime.now(UTC)
    tables = PipelineTables({}, {}, {}, {})
    pipeline = Pipeline(
        tables=tables, partitions=partitions, policy=FlagPolicy(),
        cluster=ClusterDetector(), volume=VolumeDetector(),
        aberration=AberrationDetector(AberrationParams()), rules=TimeRules(),
        info=lambda cid: info.get(cid) or UNREGISTERED,
        wards_on_partition=lambda _p: set(), outbreak=OutbreakAreaHistory,
        wall_ms=lambda: int(now.timestamp() * 1000))
    ids = list(info)
    part = {cid: partition_for(cid.encode(), partitions) for cid in ids}
    offsets = [0] * partitions
    start = now - timedelta(hours=24)
    step_s = 24 * 3600 / max(1, checkins)
    before = _rss_kib()
    started = time.perf_counter()
    batch: list[RawRecord] = []
    for i in range(checkins):
        cid = ids[i % checkpoints]
        at = start + timedelta(seconds=i * step_s)
        sick = i % 97 == 0
        received = at + timedelta(seconds=2)
        person = i * 7919 % (checkins * 3 + 1)
        symptoms = '["cough"]' if sick else "[]"
        value = (f'{{"schema_version":1,"declaration_id":"{uuid.UUID(int=i + 1)}",'
                 f'"checkpoint_id":"{cid}","scanned_at":"{at.isoformat()}",'
                 f'"received_at":"{received.isoformat()}","person":{{"key":"{person:032x}"}},'
                 f'"temperature_c":null,"symptoms":{symptoms},"contact":"none",'
                 f'"travel_from":[]}}')
        p = part[cid]
        batch.append(RawRecord("declarations.v1", p, offsets[p], cid.encode(), value.encode()))
        offsets[p] += 1
        if len(batch) == 1000:
            pipeline.process(batch)
            batch = []
    if batch:
        pipeline.process(batch)
    seconds = time.perf_counter() - started
    after = _rss_kib()
    state_bytes = sum(len(v) for t in (tables.buckets, tables.recent, tables.checkpoints,
                                       tables.clocks) for v in t.values())
    return {"checkpoints": checkpoints, "checkins": checkins,
            "rss_before_mib": round(before / 1024, 1), "rss_after_mib": round(after / 1024, 1),
            "state_mib": round(state_bytes / 2**20, 1), "seconds": round(seconds, 1),
            "rate": round(checkins / seconds)}


def measure(checkpoints: int, checkins: int) -> dict[str, float]:
    """One configuration in a fresh process."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.worker_memory", "--one",
                           "--checkpoints", str(checkpoints), "--checkins", str(checkins)],
                          capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure_all(checkpoints: int = 10_000, checkins: int = 1_000_000) -> dict[str, float]:
    """Three configurations: the target, a tenth of the check-ins, a tenth of the
    checkpoints; the growth per checkpoint and per retained check-in from them."""
    full = measure(checkpoints, checkins)
    fewer_checkins = measure(checkpoints, checkins // 10)
    fewer_checkpoints = measure(checkpoints // 10, checkins // 10)
    per_checkin = ((full["rss_after_mib"] - fewer_checkins["rss_after_mib"]) * 1024
                   / (checkins - checkins // 10))
    per_checkpoint = ((fewer_checkins["rss_after_mib"] - fewer_checkpoints["rss_after_mib"])
                      * 1024 * 1024 / (checkpoints - checkpoints // 10))
    for row in (full, fewer_checkins, fewer_checkpoints):
        print(f"  {row['checkpoints']:>6,} checkpoints, {row['checkins']:>9,} check-ins: RSS "
              f"{row['rss_before_mib']} -> {row['rss_after_mib']} MiB (encoded state "
              f"{row['state_mib']} MiB; fed at {row['rate']:,} rec/s)", flush=True)
    return {"worker_rss_gib": round(full["rss_after_mib"] / 1024, 3),
            "kib_per_retained_checkin": round(per_checkin, 3),
            "bytes_per_checkpoint": round(per_checkpoint)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=int, default=10_000)
    parser.add_argument("--checkins", type=int, default=1_000_000)
    parser.add_argument("--one", action="store_true", help="one configuration, this process")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.checkpoints, args.checkins)), flush=True)
        return
    print(json.dumps(measure_all(args.checkpoints, args.checkins)), flush=True)


if __name__ == "__main__":
    main()

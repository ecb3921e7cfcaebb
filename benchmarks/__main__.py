"""All benchmarks in one run: ``.venv/bin/python -m benchmarks [--records 60000]``.

Each figure is measured against its baseline in the same run; one line per figure, and
the last line is JSON with the ratios (issue 6/7's goals) and the worker's memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from benchmarks import e2e, ingest, keep_up, worker_memory, worker_throughput


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--seconds", type=float, default=10, help="per ingest figure")
    args = parser.parse_args()
    started = time.monotonic()
    # 2,000 checkpoints on a second broker, in the same turns as the 200-checkpoint runs.
    small = worker_throughput.measure(args.records, 200, two_workers=True,
                                      also_checkpoints=2000)
    print(f"worker, 200 checkpoints: {small['worker']:,.0f} rec/s "
          f"({worker_throughput.runs_text(small['worker_runs'])}); faust floor "
          f"{small['floor']:,.0f} ({worker_throughput.runs_text(small['floor_runs'])}); "
          f"faust as it ships {small['stock_floor']:,.0f} "
          f"({worker_throughput.runs_text(small['stock_floor_runs'])}); "
          f"bare aiokafka {small['bare']:,.0f}", flush=True)
    print(f"two workers on a pre-filled topic: {small['two_workers']:,.0f} rec/s "
          f"({worker_throughput.runs_text(small['two_workers_runs'])}) against one: "
          f"{small['worker']:,.0f}", flush=True)
    print(f"worker, 2,000 checkpoints (same turns, own broker): {small['also']:,.0f} rec/s "
          f"({worker_throughput.runs_text(small['also_runs'])})", flush=True)
    api = ingest.measure_in_tmp(args.seconds)
    latency = e2e.measure_in_tmp(max(20.0, args.seconds * 2))
    print(f"202 to SSE alert at 25% of the maximum rate ({latency['rate']:,.0f} req/s): "
          f"p50 {latency['p50_s']} s, p99 {latency['p99_s']} s "
          f"({latency['alerts_seen']}/{latency['alerts_expected']} alerts)", flush=True)
    behind = keep_up.measure_in_tmp(max(20.0, args.seconds * 2))
    print(f"worker while one API process ingests batches at its maximum "
          f"({behind['accepted_per_s']:,.0f} decl/s): {behind['behind_at_end']:,} behind at "
          f"the end, caught up {behind['lag_at_end_s']} s later", flush=True)
    print("worker memory (10,000 checkpoints; check-ins retained in its state):", flush=True)
    memory = worker_memory.measure_all(10_000, 1_000_000)
    print(f"worker RSS, 10,000 checkpoints and 1,000,000 retained check-ins: "
          f"{memory['worker_rss_gib']} GiB; growth {memory['kib_per_retained_checkin']} KiB "
          f"per retained check-in, {memory['bytes_per_checkpoint']:,} bytes per checkpoint",
          flush=True)
    summary = {
        "worker_vs_faust_floor": round(small["worker"] / small["floor"], 3),
        "worker_vs_stock_faust_floor": round(small["worker"] / small["stock_floor"], 3),
        "worker_2000_vs_200": round(small["also"] / small["worker"], 3),
        "two_workers_vs_one": round(small["two_workers"] / small["worker"], 3),
        "single_vs_noop": api["single_vs_noop"],
        "single_ceiling_vs_noop": api["ceiling_vs_noop"],
        "batch_vs_bare_producer": api["batch_vs_bare_producer"],
        "e2e_p99_s": latency["p99_s"],
        "e2e_p50_s": latency["p50_s"],
        "keep_up_lag_s": behind["lag_at_end_s"],
        "worker_rss_gib": memory["worker_rss_gib"],
        "worker_kib_per_retained_checkin": memory["kib_per_retained_checkin"],
        "worker_bytes_per_checkpoint": memory["bytes_per_checkpoint"],
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

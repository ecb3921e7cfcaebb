"""All benchmarks in one run: ``.venv/bin/python -m benchmarks [--records 60000]``.

Each figure is measured against its baseline in the same run; one line per figure, and
the last line is JSON with the ratios (issue 6/7's goals). Figures not measured yet are
``null`` with the reason in ``"missing"``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from benchmarks import e2e, ingest, worker_throughput


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--seconds", type=float, default=10, help="per ingest figure")
    args = parser.parse_args()
    started = time.monotonic()
    small = worker_throughput.measure(args.records, 200, two_workers=True)
    print(f"worker, 200 checkpoints: {small['worker']:,.0f} rec/s; faust floor "
          f"{small['floor']:,.0f}; bare aiokafka {small['bare']:,.0f}", flush=True)
    print(f"two workers on a pre-filled topic: {small['two_workers']:,.0f} rec/s "
          f"against one: {small['worker']:,.0f}", flush=True)
    large = worker_throughput.measure(args.records, 2000)
    print(f"worker, 2,000 checkpoints: {large['worker']:,.0f} rec/s (faust floor "
          f"{large['floor']:,.0f} in that run)", flush=True)
    api = ingest.measure_in_tmp(args.seconds)
    latency = e2e.measure_in_tmp(max(20.0, args.seconds * 2))
    print(f"202 to SSE alert at 25% of the maximum rate ({latency['rate']:,.0f} req/s): "
          f"p50 {latency['p50_s']} s, p99 {latency['p99_s']} s "
          f"({latency['alerts_seen']}/{latency['alerts_expected']} alerts)", flush=True)
    summary = {
        "worker_vs_faust_floor": round(small["worker"] / small["floor"], 3),
        "worker_2000_vs_200": round(large["worker"] / small["worker"], 3),
        "two_workers_vs_one": round(small["two_workers"] / small["worker"], 3),
        "single_vs_noop": api["single_vs_noop"],
        "batch_vs_bare_producer": api["batch_vs_bare_producer"],
        "e2e_p99_s": latency["p99_s"],
        "e2e_p50_s": latency["p50_s"],
        "worker_rss_gib": None,
        "missing": {"worker_rss_gib": "not measured yet (6/7 in progress)"},
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does one worker keep up while one API process ingests batches at its maximum?

    .venv/bin/python -m benchmarks.keep_up [--seconds 20] [--checkpoints 200]

Starts its own broker, Redis, worker and API; registers ``--checkpoints`` checkpoints; drives
the batch route at its maximum (4 clients, 500 declarations a request, spread over the
checkpoints) from a second process for ``--seconds``; then measures how far behind the worker
is when the load stops: declarations accepted but not yet processed, and how long it takes
to process them (the lag at the end, in seconds). Prints one line per figure and, last, a
JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks import ingest
from benchmarks.services import broker_and_redis
from deploy.localsvc import ManagedProcess, free_port, log_tail
from vhc_common import redis_keys

CLIENTS = 4


def measure(root: Path, seconds: float, checkpoints: int) -> dict[str, Any]:
    with broker_and_redis(root) as (kafka, cache):
        procs: list[ManagedProcess] = []
        try:
            port = free_port()
            env = ingest.system_env(kafka, cache, root, port)
            worker = ManagedProcess.spawn_module("worker", "streams.main", env,
                                                 root / "worker.log")
            api = ManagedProcess.spawn_module("api", "ingest_api.main", env, root / "api.log")
            procs += [worker, api]
            base = f"http://127.0.0.1:{port}"
            ingest._wait(f"{base}/healthz", api)
            ingest.register_checkpoints(base, checkpoints)
            store = redis.Redis.from_url(cache.url)
            out = subprocess_load(base, seconds, checkpoints)
            stopped = time.perf_counter()
            accepted = int(out["declarations"])
            behind = accepted - processed(store)
            deadline = stopped + 600
            while processed(store) < accepted:
                if not worker.alive():
                    raise SystemExit(f"the worker exited:\n{log_tail(worker.log_path)}")
                if time.perf_counter() > deadline:
                    raise SystemExit("the worker did not catch up within 10 minutes")
                time.sleep(0.1)
            return {"accepted_per_s": out["declarations_per_s"], "accepted": accepted,
                    "behind_at_end": behind,
                    "lag_at_end_s": round(time.perf_counter() - stopped, 1),
                    "statuses": out["statuses"]}
        finally:
            for p in procs:
                p.stop()


def processed(store: redis.Redis) -> int:
    return sum(int(v) for v in store.hvals(redis_keys.processed_offsets()))


def subprocess_load(base: str, seconds: float, checkpoints: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.load", "--url", base, "--mode",
                          "batch", "--seconds", str(seconds), "--clients", str(CLIENTS),
                          "--key", ingest.KEY, "--checkpoint", ingest.CHECKPOINT,
                          "--checkpoints", str(checkpoints)],
                         capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure_in_tmp(seconds: float, checkpoints: int = 200) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vhc-bench-keep-up-") as tmp:
        return measure(Path(tmp), seconds, checkpoints)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--checkpoints", type=int, default=200)
    args = parser.parse_args()
    result = measure_in_tmp(args.seconds, args.checkpoints)
    print(f"batch ingest at its maximum ({CLIENTS} clients x 500, {args.checkpoints} "
          f"checkpoints): {result['accepted_per_s']:,.0f} decl/s for {args.seconds:.0f} s; "
          f"the worker was {result['behind_at_end']:,} declarations behind at the end and "
          f"caught up {result['lag_at_end_s']} s later")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

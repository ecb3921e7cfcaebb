"""Ingest benchmarks, each against its baseline in the same run, driven from a second
process (``benchmarks.load``):

* single ``POST /v1/declarations`` (16 clients) against a no-op FastAPI route validating
  the same model, served with the same uvicorn settings (``benchmarks.noop_api``); and,
  to show where the route's time goes, the route's framework ceiling: the real app
  doing what the route does before the ingest work (``benchmarks.ceiling_api``);
* batch ingest (1 client, 500 per batch, spread over ``CHECKPOINTS`` checkpoints) against
  a bare kafka-python producer with the API's producer settings sending to the same
  checkpoint ids as keys (``benchmarks.bare_producer``), so both fill the same partitions.

    .venv/bin/python -m benchmarks.ingest [--seconds 10]

Prints one line per figure and, last, a JSON line with ``single_vs_noop`` and
``batch_vs_bare_producer``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.ceiling_api import PATH as CEILING_PATH
from benchmarks.services import broker_and_redis
from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer, free_port, log_tail

KEY, TOKEN = "bench-ingest-key-0123456789", "bench-staff-token-0123456789"
SECRET = "bench-pseudonym-secret-0123456789"
CHECKPOINT = "BENCH-0000"
#: The batch figure's checkpoints: its load and the bare producer's keys spread over these
#: ids (``BENCH-0000`` … ``BENCH-0199``), as the worker and keep-up benchmarks' do.
CHECKPOINTS = 200


def api_env(kafka: KafkaBroker, cache: RedisServer, api_port: int) -> dict[str, str]:
    """The API's environment in every benchmark: development secrets, no rate limits."""
    return {**os.environ, "VHC_KAFKA_BOOTSTRAP": kafka.bootstrap, "VHC_REDIS_URL": cache.url,
            "VHC_INGEST_KEYS": KEY, "VHC_STAFF_TOKENS": TOKEN, "VHC_PSEUDONYM_SECRET": SECRET,
            "VHC_ENVIRONMENT": "development", "VHC_API_PORT": str(api_port),
            "VHC_RATE_LIMIT_PER_S": "1000000", "VHC_RATE_LIMIT_BURST": "1000000",
            "VHC_DECLARATION_RATE_PER_S": "1e7", "VHC_DECLARATION_BURST": "10000000"}


def system_env(kafka: KafkaBroker, cache: RedisServer, root: Path,
               api_port: int) -> dict[str, str]:
    """``api_env`` and a worker's (4 partitions, state under ``root``, quiet)."""
    return {**api_env(kafka, cache, api_port), "VHC_PARTITIONS": "4",
            "VHC_DATA_DIR": str(root / "worker"), "VHC_METRICS_PORT": "0",
            "VHC_LOG_LEVEL": "warning"}


def _wait(url: str, proc: ManagedProcess, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise SystemExit(f"{proc.name} exited:\n{log_tail(proc.log_path)}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{proc.name} not answering {url}:\n{log_tail(proc.log_path)}")


def _register(base: str) -> None:
    body = {"checkpoint_id": CHECKPOINT, "name": "Chợ Bench - Phường Xuân Hòa - Tỉnh Phú Thọ",
            "kind": "market", "ward_code": "08749", "address": "Xuân Hòa"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = httpx.post(f"{base}/v1/checkpoints", json=body, timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"})
        if answer.status_code in (201, 409):
            return
        time.sleep(0.5)
    raise SystemExit(f"could not register the benchmark checkpoint: {answer.text}")


def register_checkpoints(base: str, checkpoints: int) -> None:
    """``BENCH-0000`` (waiting for the API to take registrations), then ``BENCH-0001`` …"""
    _register(base)
    with httpx.Client(base_url=base, timeout=10,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for i in range(1, checkpoints):
            answer = client.post("/v1/checkpoints", json={
                "checkpoint_id": f"BENCH-{i:04d}", "kind": "market", "ward_code": "08749",
                "name": f"Chợ Bench {i} - Phường Xuân Hòa - Tỉnh Phú Thọ",
                "address": "Xuân Hòa"})
            if answer.status_code not in (201, 409):
                raise SystemExit(f"could not register BENCH-{i:04d}: {answer.text}")


def load(url: str, mode: str, seconds: float, clients: int, path: str = "",
         checkpoints: int = 1) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.load", "--url", url, "--mode", mode,
                          "--seconds", str(seconds), "--clients", str(clients), "--key", KEY,
                          "--checkpoint", CHECKPOINT, "--checkpoints", str(checkpoints),
                          "--path", path], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bare_producer(bootstrap: str, messages: int,
                  checkpoints: int = CHECKPOINTS) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bare_producer", "--bootstrap",
                          bootstrap, "--messages", str(messages), "--checkpoints",
                          str(checkpoints)], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure(root: Path, seconds: float) -> dict[str, Any]:
    with broker_and_redis(root) as (kafka, cache):
        return _measure(kafka, cache, root, seconds)


def _measure(kafka: KafkaBroker, cache: RedisServer, root: Path,
             seconds: float) -> dict[str, Any]:
    procs: list[ManagedProcess] = []
    try:
        api_port, noop_port, ceiling_port = free_port(), free_port(), free_port()
        env = {**api_env(kafka, cache, api_port), "BENCH_NOOP_PORT": str(noop_port)}
        api = ManagedProcess.spawn_module("api", "ingest_api.main", env, root / "api.log")
        noop = ManagedProcess.spawn_module("noop", "benchmarks.noop_api", env, root / "noop.log")
        ceiling = ManagedProcess.spawn_module(
            "ceiling", "benchmarks.ceiling_api", {**env, "VHC_API_PORT": str(ceiling_port)},
            root / "ceiling.log")
        procs += [api, noop, ceiling]
        base, noop_base = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{noop_port}"
        ceiling_base = f"http://127.0.0.1:{ceiling_port}"
        _wait(f"{base}/healthz", api)
        _wait(f"{noop_base}/docs", noop)
        _wait(f"{ceiling_base}/healthz", ceiling)
        register_checkpoints(base, CHECKPOINTS)
        load(base, "single", 2, 4)  # warm all three
        load(noop_base, "noop", 2, 4)
        load(ceiling_base, "single", 2, 4, CEILING_PATH)
        single = load(base, "single", seconds, 16)
        noop_r = load(noop_base, "noop", seconds, 16)
        ceiling_r = load(ceiling_base, "single", seconds, 16, CEILING_PATH)
        print(f"single POST /v1/declarations, 16 clients: {single['requests_per_s']:,.0f} req/s "
              f"(p50 {single['p50_ms']} ms, p99 {single['p99_ms']} ms) {single['statuses']}")
        print(f"no-op FastAPI route, same model and server: {noop_r['requests_per_s']:,.0f} "
              f"req/s (p99 {noop_r['p99_ms']} ms)")
        print(f"the single route's framework ceiling (the real app: key check, rate limits, "
              f"model, response model; no Redis, no Kafka): "
              f"{ceiling_r['requests_per_s']:,.0f} req/s {ceiling_r['statuses']}")
        batch = load(base, "batch", seconds, 1, checkpoints=CHECKPOINTS)
        bare = bare_producer(kafka.bootstrap, max(20_000, int(batch["declarations"])))
        print(f"batch ingest, 1 client x 500, {CHECKPOINTS} checkpoints: "
              f"{batch['declarations_per_s']:,.0f} decl/s {batch['statuses']}")
        print(f"bare kafka-python producer (acks=all, idempotent), the same "
              f"{CHECKPOINTS} keys: {bare['messages_per_s']:,.0f} msg/s")
        return {"single_vs_noop": round(single["requests_per_s"] / noop_r["requests_per_s"], 3),
                "ceiling_vs_noop": round(ceiling_r["requests_per_s"]
                                         / noop_r["requests_per_s"], 3),
                "batch_vs_bare_producer": round(batch["declarations_per_s"]
                                                / bare["messages_per_s"], 3),
                "single_req_per_s": single["requests_per_s"],
                "noop_req_per_s": noop_r["requests_per_s"],
                "ceiling_req_per_s": ceiling_r["requests_per_s"],
                "batch_decl_per_s": batch["declarations_per_s"],
                "bare_producer_msg_per_s": bare["messages_per_s"],
                "single_p99_ms": single["p99_ms"]}
    finally:
        for p in procs:
            p.stop()


def measure_in_tmp(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vhc-bench-ingest-") as tmp:
        return measure(Path(tmp), seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    print(json.dumps(measure_in_tmp(args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

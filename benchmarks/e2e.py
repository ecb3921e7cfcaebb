"""End to end: from a declaration's ``202`` to its alert on the SSE stream.

    .venv/bin/python -m benchmarks.e2e [--seconds 20]

Starts its own broker, Redis, worker and API. Measures the single route's maximum rate
(16 clients, 5 s), then sends at 25% of it for ``--seconds``, one declaration in ten with
an F0 contact (a critical per-declaration alert each), while one SSE client listens. The
latency of each alert is its arrival on the stream minus the ``202`` of the declaration
behind it. Prints p50 and p99 and, last, a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks import ingest
from benchmarks.services import broker_and_redis
from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer, free_port, log_tail


def listen(host: str, port: int, arrivals: dict[str, float], stop: threading.Event) -> None:
    """The SSE client, on its own thread with a plain socket: read in chunks, each alert's
    arrival the time its chunk came. (Read a line at a time through ``wait_for`` on the
    sender's busy event loop, it took two loop turns per line: at 250 requests per second
    the listener fell seconds behind alerts the API had sent within 0.2 s of the 202.)"""
    with socket.create_connection((host, port), timeout=1) as sock:
        sock.sendall((f"GET /v1/alerts/stream HTTP/1.1\r\nHost: {host}\r\n"
                      f"Authorization: Bearer {ingest.TOKEN}\r\n"
                      "Accept: text/event-stream\r\n\r\n").encode())
        pending = b""
        while not stop.is_set():
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            now = time.perf_counter()
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line.startswith(b"data: "):
                    alert = json.loads(line[6:])
                    for did in alert.get("evidence", {}).get("declaration_ids", []):
                        arrivals.setdefault(did, now)


async def paced(base: str, rate: float, seconds: float,
                accepted: dict[str, float]) -> int:
    interval = 1 / rate
    sent = 0
    async with httpx.AsyncClient(base_url=base, timeout=10,
                                 limits=httpx.Limits(max_connections=64)) as client:
        async def one(i: int) -> None:
            body = {"declaration_id": str(uuid.uuid4()), "checkpoint_id": ingest.CHECKPOINT,
                    "scanned_at": datetime.now(UTC).isoformat(),
                    "person": {"id_number": f"{300_000_000 + i}"},
                    "contact": "f0" if i % 10 == 0 else "none"}
            answer = await client.post("/v1/declarations", json=body,
                                       headers={"X-API-Key": ingest.KEY})
            if answer.status_code == 202 and i % 10 == 0:
                accepted[body["declaration_id"]] = time.perf_counter()

        tasks = []
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            tasks.append(asyncio.create_task(one(sent)))
            sent += 1
            await asyncio.sleep(max(0.0, started + sent * interval - time.perf_counter()))
        await asyncio.gather(*tasks)
    return sent


async def measure_async(base: str, port: int, rate: float, seconds: float) -> dict[str, Any]:
    arrivals: dict[str, float] = {}
    accepted: dict[str, float] = {}
    stop = threading.Event()
    listener = threading.Thread(target=listen, args=("127.0.0.1", port, arrivals, stop),
                                name="sse-listener", daemon=True)
    listener.start()
    await asyncio.sleep(1)
    sent = await paced(base, rate, seconds, accepted)
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and not set(accepted) <= set(arrivals):  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    stop.set()
    listener.join(timeout=5)
    latencies = sorted(arrivals[d] - t for d, t in accepted.items() if d in arrivals)
    return {"sent": sent, "alerts_expected": len(accepted), "alerts_seen": len(latencies),
            "p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "p99_s": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 3)
            if latencies else None}


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def measure(root: Path, seconds: float) -> dict[str, Any]:
    with broker_and_redis(root) as (kafka, cache):
        return _measure(kafka, cache, root, seconds)


def _measure(kafka: KafkaBroker, cache: RedisServer, root: Path,
             seconds: float) -> dict[str, Any]:
    procs: list[ManagedProcess] = []
    try:
        port = free_port()
        env = ingest.system_env(kafka, cache, root, port)
        procs.append(ManagedProcess.spawn_module("worker", "streams.main", env,
                                                 root / "worker.log"))
        api = ManagedProcess.spawn_module("api", "ingest_api.main", env, root / "api.log")
        procs.append(api)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while not _ready(base):
            if not api.alive() or time.monotonic() > deadline:
                sys.exit(f"not ready:\n{log_tail(api.log_path)}\n"
                         f"{log_tail(root / 'worker.log')}")
            time.sleep(0.5)
        ingest._register(base)
        top = ingest.load(base, "single", 5, 16)
        rate = top["requests_per_s"] * 0.25
        print(f"single route maximum: {top['requests_per_s']:,.0f} req/s; sending at "
              f"{rate:,.0f} req/s for {seconds:.0f} s", flush=True)
        result = asyncio.run(measure_async(base, port, rate, seconds))
        result["rate"] = round(rate, 1)
        return result
    finally:
        for p in procs:
            p.stop()


def measure_in_tmp(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vhc-bench-e2e-") as tmp:
        return measure(Path(tmp), seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    result = measure_in_tmp(args.seconds)
    print(f"202 to SSE alert: p50 {result['p50_s']} s, p99 {result['p99_s']} s "
          f"({result['alerts_seen']}/{result['alerts_expected']} alerts seen)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

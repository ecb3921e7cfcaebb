"""Worker throughput with every detector on, against a bare consumer loop (same topic, same run).

    .venv/bin/python -m benchmarks.worker_throughput [--records 100000] [--checkpoints 200]

Starts its own Kafka broker and Redis on free ports, fills ``declarations.v1`` with
realistic declarations (two days of event time over many checkpoints, a few percent
symptomatic), then measures:

1. **baseline**: a bare aiokafka consumer that reads the topic and ``json.loads`` each value;
2. **faust floor**: a faust agent that takes the same batches and does nothing with them
   (the ceiling of any faust-based worker on this machine), run as the worker runs faust
   (``streams.faust_fixes.cheap_message_delivery`` and ``without_monitor``) and, as a
   second figure, as faust ships;
3. **worker**: the real stream worker process (``streams.main``: counting, per-declaration
   alerts, clusters, EARS/CUSUM, volume, exposure index, Redis views), from its first
   processed batch until every record is processed (read from the offsets it records).

The floors and the worker run five times each, taking turns (``--repeats``); the figures
are the medians. Prints records per second and the ratio. Numbers, not assertions: it is
not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

from benchmarks.services import broker_and_redis
from deploy.localsvc import ManagedProcess, log_tail
from vhc_common import redis_keys
from vhc_common.topics import ALERTS, DECLARATIONS

PARTITIONS = 4
#: runs of the floor and of the worker whose medians are the figures
REPEATS = 5


def make_records(n: int, checkpoints: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=2)
    step = timedelta(days=2) / n
    out = []
    for i in range(n):
        cp = f"BENCH-{rng.randrange(checkpoints):04d}"
        at = start + step * i
        symptoms = ["cough"] if rng.random() < 0.04 else []
        event = {
            "schema_version": 1,
            "declaration_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "checkpoint_id": cp,
            "scanned_at": at.isoformat(),
            "received_at": at.isoformat(),
            "person": {"key": f"{rng.getrandbits(128):032x}"},
            "temperature_c": round(rng.gauss(36.6, 0.4), 1),
            "symptoms": symptoms,
            "contact": "f1" if rng.random() < 0.005 else "none",
            "travel_from": [],
        }
        out.append((cp.encode(), json.dumps(event).encode()))
    return out


async def produce(bootstrap: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10,
                                max_batch_size=131072, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(DECLARATIONS, key=k, value=v) for k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def bare_loop(bootstrap: str, n: int) -> float:
    """Records per second of a bare consumer that only decodes JSON."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(DECLARATIONS, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        seen = 0
        started = time.perf_counter()
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                for record in records:
                    json.loads(record.value)
                    seen += 1
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def faust_floor(env: dict[str, str], n: int, *, stock: bool = False) -> float:
    """The faust floor's rate: faust as the worker runs it, or (``stock``) as faust ships,
    without the worker's fixes (``benchmarks.faust_floor``)."""
    extra = {"BENCH_STOCK_FAUST": "1"} if stock else {}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.faust_floor"],
                          env={**env, **extra, "BENCH_RECORDS": str(n)}, capture_output=True,
                          text=True, timeout=900, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("FLOOR "):
            return float(line.split()[1])
    raise RuntimeError(f"the faust floor run failed:\n{proc.stdout}\n{proc.stderr[-2000:]}")


def group_settled(admin: KafkaAdminClient, group: str, members: int) -> bool:
    """Whether the consumer group has ``members`` members and a finished assignment."""
    found = admin.describe_groups([group]).get(group) or {}
    return found.get("group_state") == "Stable" and len(found.get("members") or []) == members


def clear_alerts(bootstrap: str) -> int:
    """Delete what earlier runs wrote to ``alerts.v1``; returns the records deleted. Every
    worker reads that topic (its alert view), a new consumer group from the beginning: the
    n-th run of a benchmark stored the alerts of every run before it as well as its own
    (one reason the one-worker rate fell from run to run, 5,628 to 3,998 records a second
    in one full run, while the faust floor, which reads no alerts, did not)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        partitions = consumer.partitions_for_topic(ALERTS) or set()
        ends = consumer.end_offsets([KafkaTopicPartition(ALERTS, p) for p in partitions])
        starts = consumer.beginning_offsets(list(ends))
        todo = {tp: end for tp, end in ends.items() if end > starts[tp]}
        if todo:
            admin.delete_records(todo)
        return sum(end - starts[tp] for tp, end in todo.items())
    finally:
        consumer.close()
        admin.close()


def worker_rate(env: dict[str, str], redis_url: str, n: int, log_path: Path,
                workers: int = 1) -> float:
    """Records per second of ``workers`` real worker processes in one consumer group, from
    the first processed batch to the last record (read from the offsets they record). With
    more than one, from when the group is settled with all of them: the first to join takes
    every partition and starts alone (the test broker runs with no initial rebalance delay),
    so the figure would otherwise measure how soon the others joined; and it starts at the
    first records processed after that, once their tables are restored."""
    cleared = clear_alerts(env["VHC_KAFKA_BOOTSTRAP"])
    if cleared:
        print(f"  ({cleared} alerts of earlier runs deleted from {ALERTS})", file=sys.stderr,
              flush=True)
    store = redis.Redis.from_url(redis_url)
    admin = KafkaAdminClient(bootstrap_servers=env["VHC_KAFKA_BOOTSTRAP"]) \
        if workers > 1 else None
    settled = admin is None
    store.flushdb()  # a fresh view: offsets, stats, alerts
    # ...that is in place, as for a worker group that has run before: otherwise the
    # worker's first Redis check (seconds in) takes the empty Redis for a lost one and
    # rebuilds every view from the tables and Kafka inside the measured window.
    store.set(redis_keys.restored_marker(f"worker:{env['VHC_APP_ID']}"), "1")
    # ...its exposure index marked complete too: otherwise a worker that takes over
    # partitions in the group's rebalance replays their exposure index from Kafka (the
    # records below the committed offsets) inside the measured window.
    store.hset(redis_keys.exposure_indexed(),
               mapping={str(p): "1" for p in range(int(env["VHC_PARTITIONS"]))})
    procs = [ManagedProcess.spawn_module(
        f"worker-{i}", "streams.main",
        {**env, "VHC_DATA_DIR": f"{env['VHC_DATA_DIR']}-{i}"},
        log_path.with_name(f"{log_path.stem}-{i}.log")) for i in range(workers)]
    first: float | None = None
    first_done = 0
    # From the first records processed once the group is settled: after the assignment
    # the workers restore their tables before they process (a second or more with standby
    # replicas), which is not the rate of two workers.
    at_settle = 0
    try:
        deadline = time.monotonic() + 900
        last_report = 0.0
        while time.monotonic() < deadline:
            for proc in procs:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited:\n{log_tail(proc.log_path)}")
            done = sum(int(v) for v in store.hvals(redis_keys.processed_offsets()))
            if not settled:
                assert admin is not None
                settled = group_settled(admin, env["VHC_APP_ID"], workers)
                at_settle = done
            now = time.perf_counter()
            if done > at_settle and first is None and settled:
                first, first_done = now, done
            if done >= n:
                if first is None:
                    raise RuntimeError("every record was processed before the group settled: "
                                       "measure with more records")
                return (n - first_done) / (now - first) if now > first else float("nan")
            if now - last_report > 5:
                print(f"  {workers} worker(s): {done}/{n} records processed", file=sys.stderr,
                      flush=True)
                last_report = now
            time.sleep(0.05)
        raise RuntimeError("the workers did not finish within 15 minutes")
    finally:
        if admin is not None:
            admin.close()
        for proc in procs:
            proc.stop()


def measure(records: int, checkpoints: int, *, two_workers: bool = False,
            also_checkpoints: int | None = None, repeats: int = REPEATS) -> dict[str, Any]:
    """Bare loop, faust floor and the worker on one pre-filled topic (and, if asked, two
    workers against one), each from a fresh consumer group. The floor, the worker (and the
    two workers) run ``repeats`` times, taking turns; their figures are the medians
    (``*_runs``: each run), since one run of any varied by 10-20% here.

    ``also_checkpoints``: the worker also runs, as often and in the same turns, on a
    second broker pre-filled with the same number of records over that many checkpoints
    (``out["also"]``). Run one after the other, the two sides of that ratio fell in
    different phases of this machine's speed (one full run: 2,000 checkpoints 4,640,
    4,714, then 2,892, 3,228, 3,439 records a second while the 200-checkpoint runs
    before them had gone from 4,568 up to 6,673)."""
    with tempfile.TemporaryDirectory(prefix="vhc-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        sides = [(checkpoints, root / "a")]
        if also_checkpoints is not None:
            sides.append((also_checkpoints, root / "b"))
        services = []
        for count, where in sides:
            where.mkdir()
            kafka, cache = stack.enter_context(broker_and_redis(where, partitions=PARTITIONS))
            print(f"producing {records} declarations over {count} checkpoints",
                  file=sys.stderr, flush=True)
            asyncio.run(produce(kafka.bootstrap, make_records(records, count)))
            services.append((kafka, cache, where))
        out: dict[str, Any] = {"bare": asyncio.run(bare_loop(services[0][0].bootstrap,
                                                              records))}

        def env_of(kafka: Any, cache: Any, where: Path) -> dict[str, str]:
            return {**os.environ, "VHC_KAFKA_BOOTSTRAP": kafka.bootstrap,
                    "VHC_REDIS_URL": cache.url, "VHC_PARTITIONS": str(PARTITIONS),
                    "VHC_DATA_DIR": str(where / "worker"), "VHC_METRICS_PORT": "0",
                    "VHC_LOG_LEVEL": "warning"}

        def run(side: int, name: str, workers: int = 1) -> float:
            """One worker run on ``side``'s broker, a fresh consumer group ``name``."""
            kafka, cache, where = services[side]
            return worker_rate({**env_of(kafka, cache, where), "VHC_APP_ID": f"bench-{name}",
                                "VHC_DATA_DIR": str(where / name)},
                               cache.url, records, where / f"{name}.log", workers=workers)

        env = env_of(*services[0])
        floors: list[float] = []
        stock: list[float] = []
        workers: list[float] = []
        twos: list[float] = []
        also: list[float] = []
        for i in range(repeats):
            floors.append(faust_floor(env, records))
            stock.append(faust_floor(env, records, stock=True))
            workers.append(run(0, f"one-{i}"))
            if two_workers:
                twos.append(run(0, f"two-{i}", workers=2))
            if also_checkpoints is not None:
                also.append(run(1, f"also-{i}"))
        out |= {"floor": statistics.median(floors), "worker": statistics.median(workers),
                "floor_runs": floors, "worker_runs": workers,
                "stock_floor": statistics.median(stock), "stock_floor_runs": stock}
        if two_workers:
            out |= {"two_workers": statistics.median(twos), "two_workers_runs": twos}
        if also_checkpoints is not None:
            out |= {"also": statistics.median(also), "also_runs": also}
        return out


def runs_text(rates: list[float]) -> str:
    return ", ".join(f"{r:,.0f}" for r in rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--checkpoints", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=REPEATS,
                        help="runs of the floor and the worker (medians)")
    args = parser.parse_args()
    out = measure(args.records, args.checkpoints, repeats=args.repeats)
    bare, floor, worker = out["bare"], out["floor"], out["worker"]
    print(f"records: {args.records}, checkpoints: {args.checkpoints}, partitions: {PARTITIONS}")
    print(f"bare aiokafka loop (json.loads only): {bare:>10,.0f} records/s")
    stock = out["stock_floor"]
    print(f"faust agent, take_events, no work:    {floor:>10,.0f} records/s"
          f"   ({floor / bare:.1%} of bare; median of {runs_text(out['floor_runs'])})")
    print(f"  the same, faust as it ships:        {stock:>10,.0f} records/s"
          f"   (median of {runs_text(out['stock_floor_runs'])})")
    print(f"vhc-worker, every detector on:       {worker:>10,.0f} records/s"
          f"   ({worker / floor:.1%} of the faust floor, {worker / stock:.1%} of faust as "
          f"it ships; median of {runs_text(out['worker_runs'])})")
    print(f"ratio worker / bare:                  {worker / bare:>10.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

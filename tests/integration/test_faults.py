"""Faults under sustained load from a second process (``tests/integration/loadgen.py``),
against a real broker and Redis. Each test prints what was sent, acknowledged and
counted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from kafka import KafkaConsumer, TopicPartition

from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer, free_port
from tests.integration.conftest import (
    INGEST_KEY,
    Api,
    good_name,
    service_env,
    start_api,
    start_worker,
    wait_for,
)
from vhc_common.topics import DECLARATIONS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(run_dir: Path) -> Iterator[KafkaBroker]:
    own = KafkaBroker.on_free_ports("kafka-faults", run_dir)
    own.start()
    yield own
    own.stop()


def env_for(broker: KafkaBroker, redis_server: RedisServer, run_dir: Path, name: str,
            db: int, **extra: str) -> dict[str, str]:
    return service_env(broker, redis_server, run_dir,
                       VHC_REDIS_URL=redis_server.url.rsplit("/", 1)[0] + f"/{db}",
                       VHC_APP_ID=f"vhc-{name}", VHC_DATA_DIR=str(run_dir / f"worker-{name}"),
                       VHC_PUBLISH_TIMEOUT_S="3", VHC_RATE_LIMIT_PER_S="100000", **extra)


def register(api: Api, count: int) -> list[str]:
    ids = [f"F-{uuid.uuid4().hex[:6]}-{i}" for i in range(count)]
    for cid in ids:
        made = api.client.post("/v1/checkpoints", headers=api.staff, json={
            "checkpoint_id": cid, "name": good_name("Cửa hàng", cid, "08749"),
            "kind": "shop", "ward_code": "08749", "address": "Số 3"})
        assert made.status_code == 201, made.text
    return ids


def load(api: Api, checkpoints: list[str], out: Path, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.loadgen", api.base_url, INGEST_KEY, str(out),
         "--checkpoints", ",".join(checkpoints), "--seconds", str(seconds), "--rate", "150"],
        env=dict(os.environ), text=True)


def outcomes(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines() if line]


def in_kafka(bootstrap: str, ids: set[str]) -> Counter[str]:
    """How often each of ``ids`` is on the declarations topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    seen: Counter[str] = Counter()
    try:
        parts = [TopicPartition(DECLARATIONS, p)
                 for p in consumer.partitions_for_topic(DECLARATIONS) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    did = json.loads(r.value)["declaration_id"]
                    if did in ids:
                        seen[did] += 1
    finally:
        consumer.close()
    return seen


def counted(api: Api, checkpoints: list[str]) -> int:
    return sum(api.client.get(f"/v1/checkpoints/{c}/stats", headers=api.staff)
               .json()["windows"]["1h"]["total"] for c in checkpoints)


def test_kafka_stopped_and_restarted_under_load(broker: KafkaBroker, redis_server: RedisServer,
                                                run_dir: Path) -> None:
    env = env_for(broker, redis_server, run_dir, "kafka-restart", 4)
    worker = start_worker(env, run_dir / "worker-kafka-restart.log")
    api = start_api(env, run_dir / "api-kafka-restart.log", wait_ready=True)
    try:
        checkpoints = register(api, 4)
        out = run_dir / "load-kafka-restart.jsonl"
        gen = load(api, checkpoints, out, seconds=40)
        time.sleep(8)
        broker.stop()
        down_at = time.monotonic()
        time.sleep(10)
        broker.start()  # same ports, same data
        print(f"broker down for {time.monotonic() - down_at:.1f} s")
        assert gen.wait(timeout=120) == 0
        results = outcomes(out)
        by_status = Counter(r["status"] for r in results)
        accepted = {r["id"] for r in results if r["status"] == "accepted"}
        refused = {r["id"] for r in results if r["status"] != "accepted"}
        seen = in_kafka(broker.bootstrap, {r["id"] for r in results})
        wait_for(lambda: counted(api, checkpoints) >= len(seen), 120, "the worker's counts")
        time.sleep(3)  # a double count would show up now
        total = counted(api, checkpoints)
        print(f"sent {len(results)}: {dict(by_status)}; in Kafka: {len(seen)} ids "
              f"({sum(seen.values())} records), of them answered 503: "
              f"{len(set(seen) & refused)}; counted by the worker: {total}")
        assert set(by_status) <= {"accepted", "unavailable"}, by_status  # 202 or 503, no other
        assert by_status["unavailable"] > 0 and by_status["accepted"] > 0
        assert all(seen[i] == 1 for i in accepted), [i for i in accepted if seen[i] != 1][:5]
        assert max(seen.values()) == 1  # nothing published twice
        assert total == len(seen)  # every declaration in Kafka counted exactly once
        # Accepted after the broker came back: the system recovered on its own.
        last = [r["status"] for r in results[-50:]]
        assert last.count("accepted") >= 40, last
    finally:
        api.client.close()
        api.process.stop()
        worker.stop()


def lagged_partitions(metrics_port: int) -> set[int]:
    """The declarations partitions a worker holds (its lag gauge per assigned partition)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    except httpx.TransportError:
        return set()
    return {int(line.split('partition="')[1].split('"')[0]) for line in text.splitlines()
            if line.startswith("vhc_worker_consumer_lag_records{")
            and f'topic="{DECLARATIONS}"' in line}


def test_two_workers_one_killed_loses_and_doubles_nothing(
        broker: KafkaBroker, redis_server: RedisServer, run_dir: Path) -> None:
    env = env_for(broker, redis_server, run_dir, "two-workers", 5)
    ports = [free_port(), free_port()]
    workers: list[ManagedProcess] = [
        start_worker({**env, "VHC_DATA_DIR": str(run_dir / f"worker-two-{i}"),
                      "VHC_METRICS_PORT": str(port)}, run_dir / f"worker-two-{i}.log")
        for i, port in enumerate(ports)]
    api = start_api(env, run_dir / "api-two-workers.log", wait_ready=True)
    try:
        wait_for(lambda: lagged_partitions(ports[0]) and lagged_partitions(ports[1])
                 and lagged_partitions(ports[0]) | lagged_partitions(ports[1]) == {0, 1, 2, 3},
                 90, "both workers holding partitions")
        split = (lagged_partitions(ports[0]), lagged_partitions(ports[1]))
        checkpoints = register(api, 8)
        out = run_dir / "load-two-workers.jsonl"
        gen = load(api, checkpoints, out, seconds=30)
        time.sleep(10)
        assert workers[0].proc is not None
        workers[0].proc.send_signal(signal.SIGKILL)
        workers[0].proc.wait(timeout=10)
        assert gen.wait(timeout=120) == 0
        wait_for(lambda: lagged_partitions(ports[1]) == {0, 1, 2, 3}, 60,
                 "the survivor taking every partition")
        results = outcomes(out)
        by_status = Counter(r["status"] for r in results)
        wait_for(lambda: counted(api, checkpoints) >= by_status["accepted"], 120,
                 "the survivor's counts")
        time.sleep(3)  # a double count would show up now
        total = counted(api, checkpoints)
        print(f"partitions before the kill: {sorted(split[0])} / {sorted(split[1])}; sent "
              f"{len(results)}: {dict(by_status)}; counted: {total}")
        assert by_status == Counter({"accepted": len(results)})
        assert total == len(results)
    finally:
        api.client.close()
        api.process.stop()
        for w in workers:
            w.stop()


def test_redis_flushed_then_restarted_under_load(broker: KafkaBroker, run_dir: Path) -> None:
    """Statistics, the alert view (with acknowledgements and notes), the registry, the
    outbreak-area list and the exposure index come back from Kafka and the worker's tables;
    meanwhile every declaration is either accepted (and counted once) or refused with 503."""
    cache = RedisServer.on_free_port("redis-faults", run_dir)
    cache.start()
    env = env_for(broker, cache, run_dir, "redis-loss", 0)
    worker = start_worker(env, run_dir / "worker-redis-loss.log")
    api = start_api(env, run_dir / "api-redis-loss.log", wait_ready=True)
    try:
        checkpoints = register(api, 4)
        areas = api.client.put("/v1/outbreak-areas", headers=api.staff,
                               json={"areas": ["79", "XYZ-1"]})
        assert areas.status_code == 200, areas.text
        critical = api.client.post("/v1/declarations", headers=api.front_end, json={
            "declaration_id": str(uuid.uuid4()), "checkpoint_id": checkpoints[0],
            "scanned_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "person": {"id_number": "555000111"}, "contact": "f0"})
        assert critical.status_code == 202
        alert = wait_for(lambda: (api.client.get("/v1/alerts", headers=api.staff, params={
            "checkpoint_id": checkpoints[0]}).json()["items"] or [None])[0], 60, "the f0 alert")
        acked = api.client.post(f"/v1/alerts/{alert['alert_id']}/ack", headers=api.staff,
                                json={"note": "Đã gọi F0"})
        assert acked.status_code == 200

        out = run_dir / "load-redis-loss.jsonl"
        gen = load(api, checkpoints, out, seconds=30)
        time.sleep(8)
        client = redis.Redis.from_url(cache.url)
        client.flushall()
        client.close()
        # A case reported at once: the flush took the exposure index, and the worker's next
        # batch raises the processed offsets again long before its replay has put the index
        # back. The look-up must wait for the replay (or answer 503), not answer from the
        # hole (it did: visits 0).
        early: list[httpx.Response] = []
        probe = threading.Thread(target=lambda: early.append(httpx.post(
            f"{api.base_url}/v1/cases", headers=api.staff, timeout=60, json={
                "person": {"id_number": "555000111"},
                "confirmed_at": datetime.now(UTC).isoformat()})))
        probe.start()
        time.sleep(10)
        cache.stop()  # and a restart (its append-only file holds what was rebuilt)
        cache.start()
        assert gen.wait(timeout=120) == 0
        probe.join(timeout=90)
        assert early, "the early case report did not answer"
        print(f"case reported just after the flush: {early[0].status_code} {early[0].text}")
        assert early[0].status_code == 503 or (
            early[0].status_code == 201 and early[0].json()["visits"] == 1), early[0].text
        results = outcomes(out)
        by_status = Counter(r["status"] for r in results)
        assert set(by_status) <= {"accepted", "unavailable"}, by_status  # no 422, no 500
        accepted = {r["id"] for r in results if r["status"] == "accepted"}
        seen = in_kafka(broker.bootstrap, {r["id"] for r in results})
        wait_for(lambda: counted(api, checkpoints) >= len(seen) + 1, 120, "the counts back")
        time.sleep(3)
        total = counted(api, checkpoints)
        back = api.client.get(f"/v1/alerts/{alert['alert_id']}", headers=api.staff)
        print(f"sent {len(results)}: {dict(by_status)}; in Kafka: {len(seen)} (of them "
              f"answered 503 because Redis could not confirm: {len(set(seen) - accepted)}); "
              f"counted after the flush and the restart: {total} (+1 before the load)")
        assert all(seen[i] == 1 for i in accepted)  # every 202 is in Kafka, once
        assert total == len(seen) + 1  # and counted once: nothing lost, nothing doubled
        assert back.status_code == 200, back.text
        assert back.json()["status"] == "acknowledged"
        assert back.json()["history"][-1]["note"] == "Đã gọi F0"
        listed = api.client.get("/v1/checkpoints", headers=api.staff,
                                params={"limit": 500}).json()["items"]
        assert set(checkpoints) <= {c["checkpoint_id"] for c in listed}
        assert api.client.get("/v1/outbreak-areas",
                              headers=api.staff).json()["areas"] == ["79", "XYZ-1"]
        # The look-up answers once the worker has replayed the exposure index the flush
        # took (503 meanwhile, which a client retries), never from an index with a hole.
        refusals: list[str] = []

        def report_case() -> Any:
            case = api.client.post("/v1/cases", headers=api.staff, json={
                "person": {"id_number": "555000111"},
                "confirmed_at": datetime.now(UTC).isoformat()})
            if case.status_code == 503:
                refusals.append(case.json()["detail"])
                return None
            return case

        case = wait_for(report_case, 120, "the case look-up")
        print(f"case look-up: {len(refusals)} answers 503 before it ({refusals[-1:]})")
        assert case.status_code == 201 and case.json()["visits"] == 1, case.text
    finally:
        api.client.close()
        api.process.stop()
        worker.stop()
        cache.stop()

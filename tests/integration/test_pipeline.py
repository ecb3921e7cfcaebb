"""End to end on the real broker and Redis: ingest -> Kafka -> worker -> Redis -> stats."""

from __future__ import annotations

import random
import signal
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer
from tests.integration.conftest import (
    PARTITIONS,
    WORKER_METRICS_PORT,
    Api,
    good_name,
    service_env,
    start_api,
    start_worker,
)
from vhc_common import redis_keys
from vhc_common.partitioning import partition_for
from vhc_common.topics import ALERTS

pytestmark = pytest.mark.integration

WINDOWS = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "24h": timedelta(hours=24)}
FIELDS = ("total", "symptomatic", "fever", "contact_f0", "contact_f1", "travel_from_outbreak")


def register(api: Api, prefix: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        cid = f"{prefix}-{i}"
        answer = api.client.post("/v1/checkpoints", headers=api.staff, json={
            "checkpoint_id": cid, "name": good_name("Cửa hàng", f"{prefix} {i}", "08749"),
            "kind": "shop",
            "ward_code": "08749", "address": "Phường Xuân Hòa"})
        assert answer.status_code == 201, answer.text
        ids.append(cid)
    return ids


def make_declaration(rng: random.Random, checkpoint_id: str,
                     scanned_at: datetime) -> dict[str, Any]:
    symptoms = rng.choice([[], [], [], ["cough"], ["fever"], ["fatigue", "sore_throat"]])
    return {
        "declaration_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "checkpoint_id": checkpoint_id,
        "scanned_at": scanned_at.isoformat(),
        "person": {"id_number": f"{rng.randrange(10**11, 10**12):012d}"},
        "temperature_c": rng.choice([None, 36.5, 37.4, 37.5, 38.2]),
        "symptoms": symptoms,
        "contact": rng.choice(["none", "none", "none", "f0", "f1", "suspected"]),
        # Never an outbreak area in any test (test_alerts declares "79" one).
        "travel_from": rng.choice([[], ["TEST-NEVER-OUTBREAK"]]),
    }


def expected_stats(declarations: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The contract's definitions, computed independently of the worker's code."""
    out: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for d in declarations:
        at = datetime.fromisoformat(d["scanned_at"])
        fever = "fever" in d["symptoms"] or (d["temperature_c"] or 0) >= 37.5
        facts = {
            "total": True,
            "symptomatic": bool(d["symptoms"]) or fever,
            "fever": fever,
            "contact_f0": d["contact"] == "f0",
            "contact_f1": d["contact"] == "f1",
            "travel_from_outbreak": False,  # no outbreak areas are declared in this test
        }
        for name, length in WINDOWS.items():
            if at > now - length:
                for f, yes in facts.items():
                    out[d["checkpoint_id"]][name][f] += int(yes)
    return out


def read_stats(api: Api, checkpoint_id: str) -> dict[str, dict[str, int]]:
    answer = api.client.get(f"/v1/checkpoints/{checkpoint_id}/stats", headers=api.staff)
    assert answer.status_code == 200, answer.text
    return {name: {f: w[f] for f in FIELDS} for name, w in answer.json()["windows"].items()}


def wait_for_stats(api: Api, checkpoints: list[str], expected: dict[str, Any],
                   timeout_s: float = 60) -> None:
    want = {cp: {w: {f: expected[cp][w][f] for f in FIELDS} for w in WINDOWS}
            for cp in checkpoints}
    deadline = time.monotonic() + timeout_s
    got: dict[str, Any] = {}
    while time.monotonic() < deadline:
        got = {cp: read_stats(api, cp) for cp in checkpoints}
        if got == want:
            return
        time.sleep(0.5)
    assert got == want


def spread_times(rng: random.Random, now: datetime) -> datetime:
    """Times safely inside one window class for the whole test (minutes of margin)."""
    band = rng.choice(["5m", "1h", "24h", "old"])
    if band == "5m":
        return now - timedelta(seconds=rng.uniform(0, 150))
    if band == "1h":
        return now - timedelta(minutes=rng.uniform(10, 50))
    if band == "24h":
        return now - timedelta(hours=rng.uniform(2, 22))
    return now - timedelta(hours=rng.uniform(25, 24 * 20))  # late, in no window


def test_thousand_declarations_give_exact_stats(api: Api) -> None:
    rng = random.Random(2021)
    checkpoints = register(api, "IT-EXACT", 5)
    now = datetime.now(UTC)
    valid = [make_declaration(rng, rng.choice(checkpoints), spread_times(rng, now))
             for _ in range(1000)]
    duplicates = rng.sample(valid, 60)
    invalid = [dict(make_declaration(rng, checkpoints[0], now), temperature_c=99)
               for _ in range(20)]
    invalid += [make_declaration(rng, "IT-NOT-REGISTERED", now) for _ in range(20)]
    stream = valid + duplicates + invalid
    rng.shuffle(stream)  # out of order in event time, duplicates after or before originals
    statuses: Counter[str] = Counter()
    for start in range(0, len(stream), 100):
        answer = api.client.post("/v1/declarations/batch", headers=api.front_end,
                                 json={"declarations": stream[start:start + 100]})
        assert answer.status_code == 200, answer.text
        statuses.update(item["status"] for item in answer.json()["items"])
    assert statuses == {"accepted": 1000, "duplicate": 60, "invalid": 40}
    # Sending a few again one by one: 200 duplicate, counted once.
    for d in duplicates[:5]:
        again = api.client.post("/v1/declarations", headers=api.front_end, json=d)
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
    wait_for_stats(api, checkpoints, expected_stats(valid, now))
    last = api.client.get(f"/v1/checkpoints/{checkpoints[0]}/stats", headers=api.staff).json()
    newest = max(datetime.fromisoformat(d["scanned_at"]) for d in valid
                 if d["checkpoint_id"] == checkpoints[0])
    assert abs(datetime.fromisoformat(last["last_declaration_at"]) - newest) < timedelta(
        milliseconds=2)


def test_worker_killed_mid_stream_still_gives_exact_stats(
    api: Api, worker: ManagedProcess, kafka: KafkaBroker, redis_server: RedisServer,
    run_dir: Path,
) -> None:
    rng = random.Random(7)
    checkpoints = register(api, "IT-CRASH", 4)
    now = datetime.now(UTC)
    valid = [make_declaration(rng, rng.choice(checkpoints),
                              now - timedelta(seconds=rng.uniform(0, 120)))
             for _ in range(3000)]
    for start in range(0, 1500, 500):
        answer = api.client.post("/v1/declarations/batch", headers=api.front_end,
                                 json={"declarations": valid[start:start + 500]})
        assert answer.json()["accepted"] == 500
    # Kill the worker hard while it works through the backlog: no clean shutdown, no
    # final commit. Then make the worst case certain: rewind its committed offsets, so its
    # replacement restores the tables and replays every record, old and new.
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait(10)
    for start in range(1500, 3000, 500):
        answer = api.client.post("/v1/declarations/batch", headers=api.front_end,
                                 json={"declarations": valid[start:start + 500]})
        assert answer.json()["accepted"] == 500
    rewind_worker_group(kafka.bootstrap)
    replacement = start_worker(  # in the session worker's place, its metrics port too
        service_env(kafka, redis_server, run_dir, VHC_METRICS_PORT=str(WORKER_METRICS_PORT)),
        run_dir / "worker-restarted.log")
    # The session's worker fixture stops whatever process it holds at the end.
    worker.proc, worker._log = replacement.proc, replacement._log
    wait_for_stats(api, checkpoints, expected_stats(valid, now), timeout_s=90)


def rewind_worker_group(bootstrap: str, timeout_s: float = 30) -> None:
    """Commit offset 0 on every declarations partition for the worker's group, so the next
    worker replays every record it has already counted (after the dead member expires)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id="vhc-worker",
                             enable_auto_commit=False)
    try:
        tps = [TopicPartition("declarations.v1", p)
               for p in consumer.partitions_for_topic("declarations.v1") or ()]
        assert tps
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                consumer.commit({tp: OffsetAndMetadata(0, "", -1) for tp in tps})
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)  # the killed member holds the group until its session ends
    finally:
        consumer.close()


def test_checkpoint_is_usable_at_once_and_unknown_ones_are_named(api: Api) -> None:
    (cid,) = register(api, "IT-FRESH", 1)
    rng = random.Random(1)
    answer = api.client.post("/v1/declarations", headers=api.front_end,
                             json=make_declaration(rng, cid, datetime.now(UTC)))
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted"
    unknown = api.client.post("/v1/declarations", headers=api.front_end,
                              json=make_declaration(rng, "IT-NOWHERE", datetime.now(UTC)))
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == [{"loc": ["body", "checkpoint_id"],
                                         "msg": "checkpoint 'IT-NOWHERE' is not registered",
                                         "type": "unknown_checkpoint"}]


def ticks_held() -> float:
    text = httpx.get(f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics", timeout=5).text
    (value,) = [float(line.split()[1]) for line in text.splitlines()
                if line.startswith("vhc_worker_ticks_held_total ")]
    return value


def test_ticks_move_a_caught_up_partition(api: Api) -> None:
    """A tick is held while the partition's declarations wait (``Pipeline.tick``), as the
    consumer's highwater says. On a real broker, once the worker has processed them, the
    highwater it last heard matches and the ticks (every 5 s) go through: held ones would
    keep adding up, and a silence would never be noticed live."""
    (cid,) = register(api, "IT-TICK", 1)
    rng = random.Random(3)
    # Live (received within 10 minutes of its scan) and older than the tick lag (30 s):
    # every tick from now on moves the partition's live clock, or is held.
    scanned = datetime.now(UTC) - timedelta(minutes=2)
    declaration = make_declaration(rng, cid, scanned)
    answer = api.client.post("/v1/declarations", headers=api.front_end, json=declaration)
    assert answer.status_code == 202, answer.text
    wait_for_stats(api, [cid], expected_stats([declaration], datetime.now(UTC)))
    before = ticks_held()
    time.sleep(11)  # two ticks or more
    assert ticks_held() - before <= 1  # one in flight as the declaration came in


def test_alerts_go_to_their_keys_partition(api: Api, kafka: KafkaBroker) -> None:
    """The worker sends alerts in record batches of its own (``streams.changelog.send_keyed``),
    not through faust's ``topic.send``: each still lands on its key's partition, as the
    co-partitioner puts it, for the alert view's and the notifier's order per checkpoint."""
    checkpoints = register(api, "IT-ALERTKEY", 6)
    rng = random.Random(4)
    for cid in checkpoints:
        sick = dict(make_declaration(rng, cid, datetime.now(UTC)), symptoms=["cough"])
        assert api.client.post("/v1/declarations", headers=api.front_end,
                               json=sick).status_code == 202
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)
    parts = [TopicPartition(ALERTS, p) for p in range(PARTITIONS)]
    consumer.assign(parts)
    found: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 60
        while not set(checkpoints) <= found.keys() and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    assert record.key is not None
                    assert tp.partition == partition_for(record.key, PARTITIONS), record.key
                    found[record.key.decode()] = tp.partition
    finally:
        consumer.close()
    assert set(checkpoints) <= found.keys()
    assert len({found[c] for c in checkpoints}) > 1  # more than one partition was used


def test_clock_rules_name_scanned_at(api: Api) -> None:
    (cid,) = register(api, "IT-CLOCK", 1)
    rng = random.Random(2)
    now = datetime.now(UTC)
    for when, kind in ((now + timedelta(minutes=10), "future_time"),
                       (now - timedelta(days=22), "too_old")):
        answer = api.client.post("/v1/declarations", headers=api.front_end,
                                 json=make_declaration(rng, cid, when))
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "scanned_at"]
        assert answer.json()["detail"][0]["type"] == kind
    late_but_kept = api.client.post("/v1/declarations", headers=api.front_end,
                                    json=make_declaration(rng, cid, now - timedelta(days=20)))
    assert late_but_kept.status_code == 202


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong-key-0123456789"},
                                     {"Authorization": "Bearer it-staff-token-0123456789"}])
def test_declarations_need_a_valid_api_key(api: Api, headers: dict[str, str]) -> None:
    answer = api.client.post("/v1/declarations", headers=headers,
                             json=make_declaration(random.Random(3), "IT-EXACT-0",
                                                   datetime.now(UTC)))
    assert answer.status_code == 401


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope-nope-nope-nope"},
                                     {"X-API-Key": "it-ingest-key-0123456789"}])
def test_staff_routes_need_a_valid_token(api: Api, headers: dict[str, str]) -> None:
    assert api.client.get("/v1/checkpoints", headers=headers).status_code == 401
    assert api.client.get("/v1/checkpoints/IT-EXACT-0/stats", headers=headers).status_code == 401


def test_oversize_bodies_are_refused(api: Api) -> None:
    big = {"declarations": [make_declaration(random.Random(4), "IT-EXACT-0", datetime.now(UTC))
                            | {"padding": "x" * 5000} for _ in range(300)]}
    answer = api.client.post("/v1/declarations/batch", headers=api.front_end, json=big)
    assert answer.status_code == 413


def test_batch_over_500_is_refused_whole(api: Api) -> None:
    rng = random.Random(5)
    items = [make_declaration(rng, "IT-EXACT-0", datetime.now(UTC)) for _ in range(501)]
    answer = api.client.post("/v1/declarations/batch", headers=api.front_end,
                             json={"declarations": items})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "declarations"]


def test_registry_round_trip(api: Api) -> None:
    made = api.client.post("/v1/checkpoints", headers=api.staff, json={
        "name": "Siêu thị Phúc Yên - Lối vào", "kind": "supermarket", "ward_code": "08740",
        "address": "Đường Trần Phú", "opening_hours": ["08:00-22:00"]})
    assert made.status_code == 201
    body = made.json()
    assert body["checkpoint_id"].startswith("CP-08740-")
    assert (body["ward_name"], body["province_name"]) == ("Phường Phúc Yên", "Phú Thọ")
    got = api.client.get(f"/v1/checkpoints/{body['checkpoint_id']}", headers=api.staff)
    assert got.json() == body
    again = api.client.post("/v1/checkpoints", headers=api.staff,
                            json={**body, "ward_code": "08740"})
    assert again.status_code == 409
    bad_ward = api.client.post("/v1/checkpoints", headers=api.staff, json={
        "name": "Nowhere shop", "kind": "shop", "ward_code": "99999", "address": "nowhere"})
    assert bad_ward.status_code == 422
    assert bad_ward.json()["detail"][0]["loc"] == ["body", "ward_code"]
    updated = api.client.put(f"/v1/checkpoints/{body['checkpoint_id']}", headers=api.staff,
                             json={"name": "Siêu thị Phúc Yên - Cổng sau", "kind": "supermarket",
                                   "ward_code": "08740", "address": "Đường Trần Phú"})
    assert updated.status_code == 200
    assert updated.json()["created_at"] == body["created_at"]
    assert updated.json()["name"] == "Siêu thị Phúc Yên - Cổng sau"
    page: dict[str, Any] = {"next_cursor": None}
    seen: list[str] = []
    while True:
        params = {"limit": 3} | ({"cursor": page["next_cursor"]} if page["next_cursor"] else {})
        page = api.client.get("/v1/checkpoints", headers=api.staff, params=params).json()
        seen += [i["checkpoint_id"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
    assert body["checkpoint_id"] in seen and seen == sorted(seen) and len(seen) == len(set(seen))


def test_health_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "kafka": True, "redis": True, "worker": True, "registry": True}
    text = api.client.get("/metrics").text
    assert 'vhc_ingest_declarations_total{outcome="accepted"}' in text
    assert "vhc_api_request_duration_seconds_bucket" in text
    with pytest.raises(httpx.HTTPStatusError):
        api.client.get("/v1/checkpoints/IT-NOPE/stats", headers=api.staff).raise_for_status()


def test_registry_view_is_rebuilt_from_kafka(api: Api, kafka: KafkaBroker,
                                             redis_server: RedisServer, run_dir: Path) -> None:
    (cid,) = register(api, "IT-REBUILD", 1)
    store = redis.Redis.from_url(redis_server.url)
    # Redis loses the registry view (a new Redis, a flush): Kafka still has the records.
    store.delete(redis_keys.checkpoint(cid))
    store.zrem(redis_keys.checkpoint_index(), cid)
    assert api.client.get(f"/v1/checkpoints/{cid}", headers=api.staff).status_code == 404
    restarted = start_api(service_env(kafka, redis_server, run_dir), run_dir / "api-2.log",
                          wait_ready=True)
    try:
        got = restarted.client.get(f"/v1/checkpoints/{cid}", headers=restarted.staff)
        assert got.status_code == 200 and got.json()["checkpoint_id"] == cid
        answer = restarted.client.post("/v1/declarations", headers=restarted.front_end,
                                       json=make_declaration(random.Random(9), cid,
                                                             datetime.now(UTC)))
        assert answer.status_code == 202
    finally:
        restarted.process.stop()

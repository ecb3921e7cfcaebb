"""After a scenario with symptoms, contacts, a bad batch item and a case report, no clear
id number, phone number or name is anywhere: not in any Kafka topic (faust's internal
and changelog topics included), not in any Redis key or value, not in any log file, not
in any metric."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer
from tests.integration.conftest import WORKER_METRICS_PORT, Api, good_name, wait_for

pytestmark = pytest.mark.integration

ID_NUMBER = "079188012345"
PHONE = "0912873465"
PHONE_INTL = "+84912873465"
NAME = "Trần Thị Bíẩn Danh"
SECOND_ID = "038199054321"


def needles() -> dict[str, bytes]:
    """Every form the identifiers could take in bytes: plain, JSON-escaped."""
    forms: dict[str, bytes] = {}
    for label, text in (("id", ID_NUMBER), ("second id", SECOND_ID), ("phone", PHONE),
                        ("name", NAME), ("name (surname)", "Bíẩn")):
        forms[label] = text.encode()
        forms[f"{label}, JSON-escaped"] = json.dumps(text).strip('"').encode()
    return forms


def found_in(blob: bytes, where: str) -> list[str]:
    return [f"{label} in {where}" for label, needle in needles().items() if needle in blob]


def kafka_records(bootstrap: str) -> dict[str, bytes]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    topics = [t for t in admin.list_topics() if not t.startswith("__")]
    admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=2000)
    out: dict[str, bytes] = {}
    try:
        for topic in topics:
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            ends = consumer.end_offsets(parts)
            chunks: list[bytes] = []
            while any(consumer.position(tp) < ends[tp] for tp in parts):
                for records in consumer.poll(timeout_ms=1000).values():
                    for r in records:
                        chunks += [r.key or b"", r.value or b"",
                                   *(v for _, v in r.headers or ())]
            out[topic] = b"\n".join(chunks)
    finally:
        consumer.close()
    return out


def redis_dump(url: str) -> bytes:
    client = redis.Redis.from_url(url)
    chunks: list[bytes] = []
    try:
        for key in client.scan_iter(count=1000):
            chunks.append(key)
            kind = client.type(key)
            value: Any
            if kind == b"string":
                value = [client.get(key)]
            elif kind == b"hash":
                value = [x for kv in client.hgetall(key).items() for x in kv]
            elif kind == b"list":
                value = client.lrange(key, 0, -1)
            elif kind == b"set":
                value = list(client.smembers(key))
            elif kind == b"zset":
                value = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == b"stream":
                value = [x for _, fields in client.xrange(key) for kv in fields.items()
                         for x in kv]
            else:
                value = [kind]
            chunks += [v if isinstance(v, bytes) else str(v).encode() for v in value if v]
    finally:
        client.close()
    return b"\n".join(chunks)


def test_no_clear_identifier_anywhere(api: Api, kafka: KafkaBroker, redis_server: RedisServer,
                                      worker: ManagedProcess, run_dir: Path) -> None:
    cid = f"PRIV-{uuid.uuid4().hex[:6]}"
    made = api.client.post("/v1/checkpoints", headers=api.staff, json={
        "checkpoint_id": cid, "name": good_name("Cửa hàng", cid, "08749"), "kind": "shop",
        "ward_code": "08749", "address": "Số 9"})
    assert made.status_code == 201, made.text
    at = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()

    def declaration(person: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {"declaration_id": str(uuid.uuid4()), "checkpoint_id": cid, "scanned_at": at,
                "person": person, **fields}

    batch = [
        declaration({"id_number": ID_NUMBER, "phone": PHONE, "full_name": NAME,
                     "birth_year": 1988}, temperature_c=38.9, symptoms=["fever", "cough"],
                    contact="f0"),
        declaration({"phone": PHONE_INTL, "full_name": NAME}, symptoms=["cough"]),
        declaration({"id_number": SECOND_ID}, contact="f1", symptoms=["fatigue"]),
        # Invalid items carrying identifiers: refused, and the refusal must not echo them.
        {"declaration_id": ID_NUMBER, "checkpoint_id": cid, "scanned_at": at,
         "person": {"id_number": ID_NUMBER, "phone": "12", "full_name": NAME}},
        declaration({"id_number": ID_NUMBER + "9", "full_name": NAME}),
    ]
    answer = api.client.post("/v1/declarations/batch", headers=api.front_end,
                             json={"declarations": batch})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 3 and answer.json()["invalid"] == 2
    assert not found_in(answer.content, "the batch answer")
    case = api.client.post("/v1/cases", headers=api.staff, json={
        "person": {"phone": PHONE}, "confirmed_at": datetime.now(UTC).isoformat()})
    assert case.status_code == 201 and case.json()["visits"] >= 1, case.text
    assert not found_in(case.content, "the case answer")
    # The worker has processed it all: the alerts are there.
    wait_for(lambda: len(api.client.get("/v1/alerts", headers=api.staff, params={
        "checkpoint_id": cid}).json()["items"]) >= 3, 60, "the scenario's alerts")

    problems: list[str] = []
    records = kafka_records(kafka.bootstrap)
    assert {"declarations.v1", "alerts.v1", "cases.v1"} <= set(records)
    assert any("changelog" in t for t in records)  # faust's own topics are read too
    for topic, blob in records.items():
        problems += found_in(blob, f"Kafka topic {topic}")
    problems += found_in(redis_dump(redis_server.url), "Redis")
    logs = sorted(run_dir.rglob("*.log"))
    assert len(logs) >= 3
    for path in logs:
        problems += found_in(path.read_bytes(), f"log {path.name}")
    for name, url in (("API", f"{api.base_url}/metrics"),
                      ("worker", f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics")):
        problems += found_in(httpx.get(url, timeout=10).content, f"{name} metrics")
    print(f"privacy scan: {len(records)} topics, {len(logs)} log files, Redis, 2 metric "
          f"endpoints; {len(needles())} forms of 4 identifiers and a name")
    assert not problems, problems


#: Redis keys kept without expiry: none holds personal data (registry, naming index,
#: outbreak list, offsets, markers, last-seen times, the alert index of ids and its
#: sequence). The alert event stream is trimmed by age instead (checked below).
UNEXPIRING = ("vhc:checkpoint:", "vhc:checkpoints", "vhc:outbreak", "vhc:instance:",
              "vhc:restored:", "vhc:processed", "vhc:worker:offsets", "vhc:worker:exposure-indexed",
              "vhc:worker:alert-offsets", "vhc:alerts:index", "vhc:alerts:seq",
              "vhc:alerts:events", "vhc:alerts:facets-from")


def test_every_copy_of_personal_data_is_bounded_by_the_retention(
        api: Api, kafka: KafkaBroker, redis_server: RedisServer,
        worker: ManagedProcess) -> None:
    """Kafka: every topic is deleted after the retention, or compacted without personal
    data, or compacted within the retention (faust's changelogs). Redis: every key that
    can hold personal data expires within the retention."""
    from kafka.admin import ConfigResource, ConfigResourceType

    retention_ms = 21 * 86_400_000  # the session's VHC_RETENTION_DAYS (default)
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        topics = [t for t in admin.list_topics() if not t.startswith("__")]
        answers = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)
                                          for t in topics], config_filter="all")
    finally:
        admin.close()
    configs: dict[str, dict[str, str]] = {}
    for by_name in answers.values():  # kafka-python 3: {type: {name: {key: data}}}
        for name, entries in by_name.items():
            configs[name] = {k: str(v.get("value") if isinstance(v, dict) else v)
                             for k, v in entries.items()}
    assert set(topics) <= set(configs), sorted(set(topics) - set(configs))
    problems = []
    for topic, cfg in sorted(configs.items()):
        policy = cfg["cleanup.policy"]
        if "delete" in policy:
            if int(cfg["retention.ms"]) > retention_ms:
                problems.append(f"{topic}: retention.ms {cfg['retention.ms']}")
        elif topic not in ("checkpoints.v1", "outbreak-areas.v1"):
            lag, segment = int(cfg["max.compaction.lag.ms"]), int(cfg["segment.ms"])
            if lag > retention_ms or segment > retention_ms:
                problems.append(f"{topic}: compacted, lag {cfg['max.compaction.lag.ms']}, "
                                f"segment.ms {cfg['segment.ms']}")
    client = redis.Redis.from_url(redis_server.url)
    try:
        unexpiring = sorted({k.decode() for k in client.scan_iter(count=1000)
                             if client.pttl(k) == -1
                             and not k.decode().startswith(UNEXPIRING)})
        too_long = [k.decode() for k in client.scan_iter(count=1000)
                    if client.pttl(k) > retention_ms]
        last_seen = [k for k in client.scan_iter("vhc:stats:*:last") if client.pttl(k) == -1]
        assert all(client.get(k).isdigit() for k in last_seen)  # a time, nothing personal
        oldest = client.xrange("vhc:alerts:events", count=1)
    finally:
        client.close()
    print(f"{len(configs)} topics checked; Redis keys without expiry outside the allow-list: "
          f"{unexpiring[:10]}")
    assert not problems, problems
    assert not [k for k in unexpiring if not k.endswith(":last")] and not too_long, (
        unexpiring[:10], too_long[:10])
    if oldest:  # the stream keeps nothing older than the retention
        age_ms = time.time() * 1000 - int(oldest[0][0].decode().split("-")[0])
        assert age_ms <= retention_ms

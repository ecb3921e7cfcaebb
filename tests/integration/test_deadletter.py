"""Malformed and oversized records written straight into Kafka (not through the API) end
up in the dead-letter topic, each naming where it came from, and the worker goes on
counting valid declarations."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaConsumer, KafkaProducer

from deploy.localsvc import KafkaBroker, ManagedProcess
from tests.integration.conftest import Api, good_name, wait_for
from vhc_common.topics import ALERTS, DEADLETTER, DECLARATIONS

pytestmark = pytest.mark.integration


def test_bad_records_are_dead_lettered_and_the_worker_goes_on(
        api: Api, kafka: KafkaBroker, worker: ManagedProcess) -> None:
    cid = f"DLQ-{uuid.uuid4().hex[:6]}"
    made = api.client.post("/v1/checkpoints", headers=api.staff, json={
        "checkpoint_id": cid, "name": good_name("Cửa hàng", cid, "08749"), "kind": "shop",
        "ward_code": "08749", "address": "Số 4"})
    assert made.status_code == 201, made.text
    wrong_version = {"schema_version": 99, "declaration_id": str(uuid.uuid4()),
                     "checkpoint_id": cid}
    bad = {
        "not JSON": (DECLARATIONS, b"\xff\xfe not json"),
        "empty object": (DECLARATIONS, b"{}"),
        "another schema version": (DECLARATIONS, json.dumps(wrong_version).encode()),
        "deeply nested": (DECLARATIONS, b"[" * 200_000),
        "oversized": (DECLARATIONS, b'{"x": "' + b"a" * 900_000 + b'"}'),
        "a bad alert": (ALERTS, b'{"kind": "nonsense"}'),
    }
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, max_request_size=2_000_000)
    sent: dict[tuple[str, int, int], str] = {}
    for what, (topic, value) in bad.items():
        meta = producer.send(topic, key=cid.encode(), value=value).get(timeout=30)
        sent[(topic, meta.partition, meta.offset)] = what
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(DEADLETTER, bootstrap_servers=kafka.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=2000,
                             max_partition_fetch_bytes=4_000_000)
    found: dict[str, dict[str, bytes]] = {}

    def collect() -> bool:
        for record in consumer:
            headers = dict(record.headers or ())
            source = (headers.get("vhc-source-topic", b"").decode(),
                      int(headers.get("vhc-source-partition", b"-1")),
                      int(headers.get("vhc-source-offset", b"-1")))
            if source in sent:
                found[sent[source]] = headers
        return len(found) == len(sent)

    try:
        wait_for(collect, 90, "every bad record in the dead-letter topic")
    finally:
        consumer.close()
    assert all(h.get("vhc-error") for h in found.values())
    print(f"dead-lettered: {sorted(found)}")

    # The worker is still there and still counting.
    assert worker.alive()
    answer = api.client.post("/v1/declarations", headers=api.front_end, json={
        "declaration_id": str(uuid.uuid4()), "checkpoint_id": cid,
        "scanned_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "person": {"phone": "0912345678"}})
    assert answer.status_code == 202
    wait_for(lambda: api.client.get(f"/v1/checkpoints/{cid}/stats", headers=api.staff)
             .json()["windows"]["1h"]["total"] == 1, 60, "the valid declaration counted")

"""The broker goes away: prompt 503 with Retry-After, nothing remembered, success after."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deploy.localsvc import KafkaBroker, RedisServer
from tests.integration.conftest import Api, service_env, start_api

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(run_dir: Path) -> Iterator[KafkaBroker]:
    broker = KafkaBroker.on_free_ports("kafka-b", run_dir)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def api_on_own_broker(own_broker: KafkaBroker, redis_server: RedisServer,
                      run_dir: Path) -> Iterator[Api]:
    env = service_env(own_broker, redis_server, run_dir, VHC_PUBLISH_TIMEOUT_S="3")
    api = start_api(env, run_dir / "api-b.log", wait_ready=False)
    yield api
    api.client.close()
    api.process.stop()


def declaration(checkpoint_id: str) -> dict[str, Any]:
    return {"declaration_id": str(uuid.uuid4()), "checkpoint_id": checkpoint_id,
            "scanned_at": datetime.now(UTC).isoformat(), "person": {"phone": "0912345678"}}


def wait_kafka_ready(api: Api, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if api.client.get("/readyz").json()["checks"]["kafka"]:
            return
        time.sleep(0.3)
    raise AssertionError("the API never saw the broker")


def test_broker_down_gives_503_then_the_retry_is_accepted(
    own_broker: KafkaBroker, api_on_own_broker: Api
) -> None:
    api = api_on_own_broker
    wait_kafka_ready(api)
    made = api.client.post("/v1/checkpoints", headers=api.staff, json={
        "checkpoint_id": "IT-DOWN", "name": "Cổng chính UBND", "kind": "office",
        "ward_code": "08749", "address": "Xuân Hòa"})
    assert made.status_code == 201, made.text
    before = api.client.post("/v1/declarations", headers=api.front_end,
                             json=declaration("IT-DOWN"))
    assert before.status_code == 202

    own_broker.stop()
    pending = declaration("IT-DOWN")
    started = time.monotonic()
    down = api.client.post("/v1/declarations", headers=api.front_end, json=pending)
    took_s = time.monotonic() - started
    assert down.status_code == 503, down.text
    assert int(down.headers["Retry-After"]) >= 1
    assert took_s < 10, f"503 took {took_s:.1f} s; it must be prompt"
    batch = api.client.post("/v1/declarations/batch", headers=api.front_end,
                            json={"declarations": [declaration("IT-DOWN") for _ in range(3)]})
    assert batch.status_code == 503
    assert {i["status"] for i in batch.json()["items"]} == {"unavailable"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["kafka"] is False

    own_broker.start()  # same port, same data directory
    wait_kafka_ready(api)
    deadline = time.monotonic() + 30
    retry = api.client.post("/v1/declarations", headers=api.front_end, json=pending)
    while retry.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.5)  # the producer reconnects on its own schedule
        retry = api.client.post("/v1/declarations", headers=api.front_end, json=pending)
    assert retry.status_code == 202, retry.text
    assert retry.json()["status"] == "accepted"  # not "duplicate": the 503 was forgotten
    again = api.client.post("/v1/declarations", headers=api.front_end, json=pending)
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")

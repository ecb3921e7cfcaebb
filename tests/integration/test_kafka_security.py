"""Every Kafka client of the API and the worker connects with SASL when told to
(``VHC_KAFKA_SECURITY_PROTOCOL`` etc.), against a real broker that demands it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deploy.localsvc import KafkaBroker, RedisServer, free_port
from tests.integration.conftest import (
    Api,
    good_name,
    service_env,
    start_api,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.integration

USER, PASSWORD = "vhc", "sasl-password-0123456789"


@pytest.fixture(scope="module")
def sasl_broker(run_dir: Path) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(name="kafka-sasl", log_path=run_dir / "kafka-sasl.log",
                         port=free_port(), controller_port=free_port(),
                         data_dir=run_dir / "kafka-sasl", sasl_port=free_port(),
                         sasl_users=((USER, PASSWORD),))
    broker.start()
    yield broker
    broker.stop()


def sasl_env(broker: KafkaBroker, redis_server: RedisServer, run_dir: Path,
             password: str) -> dict[str, str]:
    return service_env(broker, redis_server, run_dir,
                       VHC_KAFKA_BOOTSTRAP=broker.sasl_bootstrap,
                       VHC_REDIS_URL=redis_server.url.rsplit("/", 1)[0] + "/3",
                       VHC_DATA_DIR=str(run_dir / "worker-sasl"),
                       VHC_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
                       VHC_KAFKA_SASL_MECHANISM="PLAIN", VHC_KAFKA_SASL_USERNAME=USER,
                       VHC_KAFKA_SASL_PASSWORD=password)


def test_api_and_worker_work_over_sasl(sasl_broker: KafkaBroker, redis_server: RedisServer,
                                       run_dir: Path) -> None:
    env = sasl_env(sasl_broker, redis_server, run_dir, PASSWORD)
    worker = start_worker(env, run_dir / "worker-sasl.log")
    api: Api | None = None
    try:
        api = start_api(env, run_dir / "api-sasl.log", wait_ready=True)
        cid = f"SASL-{uuid.uuid4().hex[:6]}"
        made = api.client.post("/v1/checkpoints", headers=api.staff, json={
            "checkpoint_id": cid, "name": good_name("Cửa hàng", cid, "08749"),
            "kind": "shop", "ward_code": "08749", "address": "Số 1"})
        assert made.status_code == 201, made.text
        answer = api.client.post("/v1/declarations", headers=api.front_end, json={
            "declaration_id": str(uuid.uuid4()), "checkpoint_id": cid,
            "scanned_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "person": {"id_number": "123456789"}})
        assert answer.status_code == 202, answer.text
        wait_for(lambda: api.client.get(f"/v1/checkpoints/{cid}/stats", headers=api.staff)
                 .json()["windows"]["1h"]["total"] == 1, 90, "the worker's count over SASL")
    finally:
        if api is not None:
            api.client.close()
            api.process.stop()
        worker.stop()


def test_a_wrong_password_is_not_ready_and_publishes_nothing(
        sasl_broker: KafkaBroker, redis_server: RedisServer, run_dir: Path) -> None:
    env = sasl_env(sasl_broker, redis_server, run_dir, "not-the-password-0123")
    api = start_api(env, run_dir / "api-sasl-wrong.log", wait_ready=False)
    try:
        assert api.client.get("/readyz").status_code == 503
        made = api.client.post("/v1/checkpoints", headers=api.staff, json={
            "checkpoint_id": "SASL-WRONG", "name": good_name("Cửa hàng", "SASL-WRONG", "08749"),
            "kind": "shop", "ward_code": "08749", "address": "Số 1"})
        assert made.status_code == 503, made.text
    finally:
        api.client.close()
        api.process.stop()

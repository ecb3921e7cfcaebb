"""A real Prometheus (Debian's) scrapes the running API, worker and notifier with the
project's rules loaded; every Grafana panel's query returns data, and the rules load."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.grafana import dashboards
from deploy.localsvc import (
    KafkaBroker,
    ManagedProcess,
    PrometheusServer,
    RedisServer,
    free_port,
)
from tests.integration.conftest import (
    WORKER_METRICS_PORT,
    Api,
    good_name,
    service_env,
    wait_for,
)

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def notifier(kafka: KafkaBroker, redis_server: RedisServer,
             run_dir: Path) -> Iterator[int]:
    port = free_port()
    env = service_env(kafka, redis_server, run_dir, VHC_NOTIFIER_METRICS_PORT=str(port))
    process = ManagedProcess.spawn_module("notifier-metrics", "streams.notifier", env,
                                          run_dir / "notifier-metrics.log")
    yield port
    process.stop()


@pytest.fixture(scope="module")
def prometheus(api: Api, notifier: int, run_dir: Path) -> Iterator[str]:
    server = PrometheusServer(
        name="prometheus", log_path=run_dir / "prometheus.log", port=free_port(),
        data_dir=run_dir / "prometheus", scrape_interval="1s", jobs={
            "vhc-api": [api.base_url.removeprefix("http://")],
            "vhc-worker": [f"127.0.0.1:{WORKER_METRICS_PORT}"],
            "vhc-notifier": [f"127.0.0.1:{notifier}"]})
    server.start()
    yield server.url
    server.stop()


def query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def test_every_panel_query_returns_data(api: Api, prometheus: str) -> None:
    cid = f"PM-{uuid.uuid4().hex[:6]}"
    assert api.client.post("/v1/checkpoints", headers=api.staff, json={
        "checkpoint_id": cid, "name": good_name("Chợ", cid, "08749"), "kind": "market",
        "ward_code": "08749", "address": "Xuân Hòa"}).status_code == 201

    def declare(first: int, n: int) -> None:
        for i in range(first, first + n):
            body = {"declaration_id": str(uuid.uuid4()), "checkpoint_id": cid,
                    "scanned_at": datetime.now(UTC).isoformat(),
                    "person": {"id_number": f"{200000000 + i}"},
                    "symptoms": ["cough"] if i % 5 == 0 else []}
            assert api.client.post("/v1/declarations", headers=api.front_end,
                                   json=body).status_code == 202

    # Two rounds, the second once the first is scraped: rates need counters that moved
    # while Prometheus watched.
    declare(0, 15)
    wait_for(lambda: query(prometheus, "vhc_ward_symptomatic_declarations_total"), 60,
             "the first round scraped")
    declare(15, 15)
    jobs = {"vhc-api", "vhc-worker", "vhc-notifier"}

    def up() -> set[str]:
        active = httpx.get(f"{prometheus}/api/v1/targets").json()["data"]["activeTargets"]
        return {t["labels"]["job"] for t in active if t["health"] == "up"}

    wait_for(lambda: up() == jobs, 30, f"{jobs} scraped")
    empty: list[str] = []
    for _, expr in [(n, q) for n in dashboards.DASHBOARDS
                    for q in dashboards.queries(dashboards.build(n))]:
        try:
            wait_for(lambda e=expr: query(prometheus, e), 45, expr)
        except AssertionError:
            empty.append(expr)
    assert not empty, f"queries without data: {empty}"
    rules = httpx.get(f"{prometheus}/api/v1/rules").json()["data"]["groups"]
    assert {g["name"] for g in rules} == {"vhc-recording", "vhc-alerts"}
    assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules

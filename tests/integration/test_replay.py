"""Replaying recorded traffic in time order, as fast as the pipeline takes it, yields the
alerts of the live run; a pause in the middle of the replay makes nothing late.

Twelve days of a checkpoint open 07:00-17:00 (local time) with 8 declarations in every
open hour and one symptomatic declarant a day; day -4 is silent, day -2 has 4 symptomatic
declarants in each of the hours 09, 10 and 11. Expected, and nothing else:

* 22 ``symptomatic_declaration`` (10 ordinary days x 1, the spike day 12);
* 1 ``symptom_cluster`` (the spike: 3 distinct symptomatic people within 60 minutes,
  background threshold max(3, Poisson(0.04) upper 0.001 quantile = 2) = 3);
* 1 ``checkpoint_silent`` (day -4: 0 in hours that normally see 8, P(0) = e^-8 < 0.001;
  the silent open hours form one episode; nights are closed, never "silent");
* 1 ``symptom_aberration`` (the spike: the CUSUM alarms at 09:00, then EARS C1/C2/C3 keep
  alarming while the trailing day holds the spike: one episode), and 1 more for the ward,
  whose only checkpoint this is.

It runs on its own broker, worker and API (and Redis database): stream time is per
partition, and live traffic from other tests on a shared broker would make the replay late.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer
from tests.integration.conftest import Api, service_env, start_api, start_worker

pytestmark = pytest.mark.integration

LOCAL = timedelta(hours=7)
CP = "RP-MARKET"


@pytest.fixture
def replay_system(run_dir: Path, redis_server: RedisServer) -> Iterator[Api]:
    broker = KafkaBroker.on_free_ports("kafka-r", run_dir)
    broker.start()
    env = service_env(broker, redis_server, run_dir,
                      VHC_REDIS_URL=redis_server.url.rsplit("/", 1)[0] + "/1",
                      VHC_DATA_DIR=str(run_dir / "worker-r"),
                      VHC_TICK_INTERVAL_S="0.5")
    worker: ManagedProcess = start_worker(env, run_dir / "worker-r.log")
    api = start_api(env, run_dir / "api-r.log", wait_ready=True)
    try:
        yield api
    finally:
        api.process.stop()
        worker.stop()
        broker.stop()


def recorded_traffic(today_local: datetime) -> list[dict[str, Any]]:
    out = []
    person = 500_000_000_000
    for day in range(-12, 0):
        if day == -4:
            continue  # the silent day
        for hour in range(7, 17):
            spike = day == -2 and hour in (9, 10, 11)
            for i in range(8):
                person += 1
                local = today_local + timedelta(days=day, hours=hour, minutes=7 * i)
                symptomatic = (spike and i < 4) or (not spike and hour == 9 and i == 0
                                                    and day != -2)
                out.append({
                    "declaration_id": str(uuid.uuid4()), "checkpoint_id": CP,
                    "scanned_at": (local - LOCAL).replace(tzinfo=UTC).isoformat(),
                    "person": {"id_number": str(person)},
                    "symptoms": ["cough"] if symptomatic else [],
                })
    return out


def all_alerts(api: Api) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = api.client.get("/v1/alerts", headers=api.staff, params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_replay_in_time_order_with_a_pause(replay_system: Api) -> None:
    api = replay_system
    made = api.client.post("/v1/checkpoints", headers=api.staff, json={
        "checkpoint_id": CP, "name": "Chợ Phúc Yên - Cổng B", "kind": "market",
        "ward_code": "08740", "address": "Phúc Yên", "opening_hours": ["07:00-17:00"]})
    assert made.status_code == 201
    time.sleep(3)  # the worker's registry mirror learns the opening hours
    today_local = (datetime.now(UTC) + LOCAL).replace(hour=0, minute=0, second=0,
                                                      microsecond=0, tzinfo=None)
    traffic = recorded_traffic(today_local)
    half = len(traffic) // 2
    for start in range(0, len(traffic), 400):
        if start <= half < start + 400:
            time.sleep(8)  # a pause: ticks keep coming, but the replay is not live
        answer = api.client.post("/v1/declarations/batch", headers=api.front_end,
                                 json={"declarations": traffic[start:start + 400]})
        assert answer.status_code == 200 and answer.json()["invalid"] == 0, answer.text
    expected = Counter({"symptomatic_declaration": 22, "symptom_cluster": 1,
                        "checkpoint_silent": 1, "symptom_aberration": 2})
    deadline = time.monotonic() + 60
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = all_alerts(api)
        if len(found) >= sum(expected.values()):
            break
        time.sleep(0.5)
    time.sleep(3)  # nothing else may follow
    found = all_alerts(api)
    assert Counter(a["kind"] for a in found) == expected
    by_kind = {a["kind"]: a for a in found if a["checkpoint_id"] == CP}
    (ward_alert,) = [a for a in found if a["checkpoint_id"] is None]
    assert ward_alert["kind"] == "symptom_aberration" and ward_alert["ward_code"] == "08740"
    assert ward_alert["window_end"] == by_kind["symptom_aberration"]["window_end"]
    silent = by_kind["checkpoint_silent"]
    silent_start = datetime.fromisoformat(silent["window_start"]) + LOCAL
    assert (silent_start.date(), silent_start.hour) == (
        (today_local - timedelta(days=4)).date(), 7)
    assert silent["evidence"]["observed"] == 0 and silent["evidence"]["expected"] == 8
    aberration = by_kind["symptom_aberration"]
    assert "CUSUM" in aberration["evidence"]["method"]
    end_local = datetime.fromisoformat(aberration["window_end"]) + LOCAL
    assert (end_local.date(), end_local.hour) == ((today_local - timedelta(days=2)).date(), 10)
    cluster_start = datetime.fromisoformat(by_kind["symptom_cluster"]["window_start"]) + LOCAL
    assert (cluster_start.date(), cluster_start.hour) == (
        (today_local - timedelta(days=2)).date(), 9)

"""Replaying recorded traffic in time order, as fast as the pipeline takes it, yields the
alerts of the live run; a pause in the middle of the replay makes nothing late.

Twelve days of a checkpoint open 07:00-17:00 (local time, registered) with 8 declarations
in every open hour and one symptomatic declarant a day; day -4 is silent, day -2 has 4
symptomatic declarants in each of the hours 09, 10 and 11. Expected, and nothing else:

* 22 ``symptomatic_declaration`` (10 ordinary days x 1, the spike day 12);
* 1 ``symptom_cluster`` (the spike: four distinct symptomatic people among the eight
  declarants of an hour, at a background share of about 1 in 80; the spike goes on for
  three hours, one episode);
* 1 ``checkpoint_silent`` (day -4: the gap since the evening before reaches, within the
  first hour of opening, the expected count that makes it a silence; nights are closed,
  never "silent");
* 1 ``symptom_aberration`` (the spike: the likelihood-ratio CUSUM adds about 4.2 an hour
  and crosses the checkpoint threshold 9.68 with the third hour, judged at 12:00), and 1
  more for the ward, whose only checkpoint this is: the ward budget gives it a threshold
  of 7.78, crossed with the second hour.

It runs on its own broker, worker and API (and Redis database), so that other tests'
traffic is no part of it.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer
from tests.integration.conftest import Api, good_name, service_env, start_api, start_worker
from vhc_common.kafka_admin import wait_until_consumed
from vhc_common.topics import ALERTS, DECLARATIONS

pytestmark = pytest.mark.integration

LOCAL = timedelta(hours=7)
CP = "RP-MARKET"


@dataclass
class ReplaySystem:
    broker: KafkaBroker
    env: dict[str, str]
    api: Api
    run_dir: Path
    worker: ManagedProcess | None = None

    def start_worker(self) -> None:
        """After the registry is written: the worker's mirror has it before judging."""
        self.worker = start_worker(self.env, self.run_dir / "worker-r.log")
        wait_for(lambda: self.api.client.get("/readyz").status_code == 200, 60)


@pytest.fixture
def replay_system(run_dir: Path, redis_server: RedisServer) -> Iterator[ReplaySystem]:
    broker = KafkaBroker.on_free_ports("kafka-r", run_dir)
    broker.start()
    env = service_env(broker, redis_server, run_dir,
                      VHC_REDIS_URL=redis_server.url.rsplit("/", 1)[0] + "/1",
                      VHC_DATA_DIR=str(run_dir / "worker-r"),
                      VHC_TICK_INTERVAL_S="0.5")
    api = start_api(env, run_dir / "api-r.log", wait_ready=False)
    system = ReplaySystem(broker, env, api, run_dir)
    try:
        yield system
    finally:
        api.process.stop()
        if system.worker is not None:
            system.worker.stop()
        broker.stop()


def wait_for(check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s")
        time.sleep(0.2)


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


def test_replay_in_time_order_with_a_pause(replay_system: ReplaySystem) -> None:
    api = replay_system.api
    body = {"checkpoint_id": CP, "name": good_name("Chợ", "Phúc Yên - Cổng B", "08740"),
            "kind": "market",
            "ward_code": "08740", "address": "Phúc Yên", "opening_hours": "Mo-Su 07:00-17:00"}

    def registered() -> bool:  # 503 until the API has created the topics
        return api.client.post("/v1/checkpoints", headers=api.staff, json=body).status_code in {
            201, 409}

    wait_for(registered, 60)
    replay_system.start_worker()
    today_local = (datetime.now(UTC) + LOCAL).replace(hour=0, minute=0, second=0,
                                                      microsecond=0, tzinfo=None)
    traffic = recorded_traffic(today_local)
    half = len(traffic) // 2
    for start in range(0, len(traffic), 400):
        if start <= half < start + 400:
            # A pause in the replay, part of the scenario: ticks keep coming meanwhile,
            # but the replay is not live traffic and its clock waits for it.
            time.sleep(4)
        answer = api.client.post("/v1/declarations/batch", headers=api.front_end,
                                 json={"declarations": traffic[start:start + 400]})
        assert answer.status_code == 200 and answer.json()["invalid"] == 0, answer.text
    worker = replay_system.worker
    assert worker is not None
    wait_until_consumed(replay_system.broker.bootstrap, "vhc-worker",
                        [DECLARATIONS, "vhc-worker-ward-hours-v2", ALERTS], timeout_s=120,
                        alive=worker.alive)
    found = all_alerts(api)
    assert Counter(a["kind"] for a in found) == Counter({
        "symptomatic_declaration": 22, "symptom_cluster": 1, "checkpoint_silent": 1,
        "symptom_aberration": 2})
    by_kind = {a["kind"]: a for a in found if a["checkpoint_id"] == CP}
    (ward_alert,) = [a for a in found if a["checkpoint_id"] is None]
    assert ward_alert["kind"] == "symptom_aberration" and ward_alert["ward_code"] == "08740"
    # The ward has its own budget (per ward-day, ``VHC_BUDGET_WARD_ABERRATION``), a lower
    # threshold (7.78 against 9.68): it crosses an hour before its checkpoint does.
    ward_end = datetime.fromisoformat(ward_alert["window_end"])
    cp_end = datetime.fromisoformat(by_kind["symptom_aberration"]["window_end"])
    assert ward_end == cp_end - timedelta(hours=1)
    assert ward_alert["evidence"]["threshold"] < by_kind["symptom_aberration"]["evidence"][
        "threshold"]
    silent = by_kind["checkpoint_silent"]
    gap_start = datetime.fromisoformat(silent["window_start"]) + LOCAL
    detected = datetime.fromisoformat(silent["detected_at"]) + LOCAL
    assert gap_start.date() == (today_local - timedelta(days=5)).date()
    assert gap_start.hour == 16  # the last declaration of the day before
    assert detected.date() == (today_local - timedelta(days=4)).date()
    # Within three hours of opening, as live time would have found it (the replay jumps a
    # day and a half between two records); the day of the week sets the baseline.
    assert 7 <= detected.hour < 10
    assert silent["evidence"]["observed"] == 0
    aberration = by_kind["symptom_aberration"]
    assert aberration["evidence"]["method"] == "llr_cusum"
    end_local = datetime.fromisoformat(aberration["window_end"]) + LOCAL
    assert (end_local.date(), end_local.hour) == ((today_local - timedelta(days=2)).date(), 12)
    cluster_start = datetime.fromisoformat(by_kind["symptom_cluster"]["window_start"]) + LOCAL
    assert (cluster_start.date(), cluster_start.hour) == (
        (today_local - timedelta(days=2)).date(), 9)

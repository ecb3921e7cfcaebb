"""Run a scenario through the real system: broker, Redis, worker and API as processes.

For each seed, fresh services on free ports (``deploy.localsvc``). The checkpoints and the
outbreak-area list (backdated to the scenario's start) are registered through the API
*before* the worker starts, so the worker's registry mirror has them before it judges the
first declaration. The declarations then go through ``POST /v1/declarations/batch`` in the
order front ends send them, one batch at a time (so the records' order, and with it every
verdict, is the same in every run), as fast as the API takes them. The confirmed case is
reported, the run waits until the worker has committed everything it consumed, and the
alerts are read back from ``GET /v1/alerts``.

``kill_worker=N`` SIGKILLs the worker N times at points drawn from the seed while the
scenario streams in, starting a new one each time: the alerts must be the same set as a
clean run's.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deploy.localsvc import (
    KafkaBroker,
    ManagedProcess,
    RedisServer,
    ServiceStartError,
    free_port,
    log_tail,
)
from simulator.scenario import Scenario
from vhc_common.kafka_admin import wait_until_consumed
from vhc_common.topics import ALERTS, DECLARATIONS

__all__ = ["LiveSystem"]

BATCH = 500
APP_ID = "vhc-eval-worker"


@dataclass
class LiveSystem:
    root: Path
    kill_worker: int = 0
    partitions: int = 4
    ingest_key: str = field(default_factory=lambda: "eval-ingest-" + secrets.token_hex(8))
    staff_token: str = field(default_factory=lambda: "eval-staff-" + secrets.token_hex(8))
    _running: list[ManagedProcess] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self._running):
            proc.stop()
        self._running.clear()

    def _env(self, kafka: KafkaBroker, redis: RedisServer, run: Path) -> dict[str, str]:
        return {
            **os.environ,
            "VHC_KAFKA_BOOTSTRAP": kafka.bootstrap, "VHC_REDIS_URL": redis.url,
            "VHC_INGEST_KEYS": self.ingest_key, "VHC_STAFF_TOKENS": self.staff_token,
            "VHC_PSEUDONYM_SECRET": "eval-pseudonym-secret-" + run.name,
            "VHC_ENVIRONMENT": "development",
            "VHC_PARTITIONS": str(self.partitions), "VHC_APP_ID": APP_ID,
            "VHC_DATA_DIR": str(run / "worker"), "VHC_METRICS_PORT": "0",
            "VHC_SESSION_TIMEOUT_S": "6", "VHC_HEARTBEAT_INTERVAL_S": "0.5",
            # Replays are fast: 200 requests a second is not enough for 500-item batches.
            "VHC_RATE_LIMIT_PER_S": "100000", "VHC_DECLARATION_RATE_PER_S": "1000000",
            "VHC_DECLARATION_BURST": "1000000",
        }

    def run(self, scenario: Scenario, progress: Callable[[int], object]) -> dict[str, Any]:
        """Run one scenario; returns ``{"alerts": [...], ...diagnostics}``."""
        run = self.root / f"seed-{scenario.plan.config.seed}"
        shutil.rmtree(run, ignore_errors=True)  # a fresh broker and Redis every time
        run.mkdir(parents=True)
        kafka = KafkaBroker.on_free_ports("kafka", run)
        redis = RedisServer.on_free_port("redis", run)
        kafka.start()
        self._running.append(kafka)
        redis.start()
        self._running.append(redis)
        env = self._env(kafka, redis, run)
        port = free_port()
        api = ManagedProcess.spawn_module("api", "ingest_api.main",
                                          {**env, "VHC_API_PORT": str(port)}, run / "api.log")
        self._running.append(api)
        base = f"http://127.0.0.1:{port}"
        staff = {"Authorization": f"Bearer {self.staff_token}"}
        front = {"X-API-Key": self.ingest_key}
        kills: list[int] = []
        try:
            with httpx.Client(base_url=base, timeout=120) as client:
                _wait(client, "/healthz", api, run / "api.log")
                self._register(client, scenario, staff)
                worker = self._worker(env, run, 0)
                _wait(client, "/readyz", api, run / "api.log", also=worker)
                stream = list(scenario.stream())
                batches = range(0, len(stream), BATCH)
                rng = random.Random(f"kills-{scenario.plan.config.seed}")
                kill_at = set(rng.sample(list(batches)[1:-1], min(self.kill_worker,
                                                                   len(batches) - 2)))
                for start in batches:
                    if start in kill_at:
                        worker = self._kill_and_restart(worker, env, run, len(kills) + 1)
                        kills.append(start)
                    items = [d.body() for d in stream[start:start + BATCH]]
                    _post_batch(client, items, front)
                    progress(len(items))
                case = self._report_case(client, scenario, staff)
                self._wait_quiet(kafka.bootstrap, worker)
                alerts = _all_alerts(client, staff)
        finally:
            self.stop()
        return {"alerts": alerts, "kills_at_declaration": kills, "case_answer": case}

    # -------------------------------------------------------------- steps

    def _register(self, client: httpx.Client, scenario: Scenario,
                  staff: dict[str, str]) -> None:
        for cp in scenario.plan.checkpoints:
            deadline = time.monotonic() + 60
            while True:  # 503 until the API has created the topics
                answer = client.post("/v1/checkpoints", headers=staff, json=cp.body())
                if answer.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(float(answer.headers.get("Retry-After", "1")))
            if answer.status_code != 201:
                raise RuntimeError(f"registering {cp.checkpoint_id}: {answer.text}")
        answer = client.put("/v1/outbreak-areas", headers=staff, json={
            "areas": [scenario.outbreak_area], "effective_from": scenario.start.isoformat()})
        if answer.status_code != 200:
            raise RuntimeError(f"outbreak areas: {answer.text}")

    def _worker(self, env: dict[str, str], run: Path, n: int) -> ManagedProcess:
        proc = ManagedProcess.spawn_module("worker", "streams.main", env,
                                           run / f"worker-{n}.log")
        self._running.append(proc)
        return proc

    def _kill_and_restart(self, worker: ManagedProcess, env: dict[str, str], run: Path,
                          n: int) -> ManagedProcess:
        assert worker.proc is not None
        worker.proc.kill()  # SIGKILL: no clean shutdown, no final commit
        worker.proc.wait(10)
        self._running.remove(worker)
        return self._worker(env, run, n)

    def _report_case(self, client: httpx.Client, scenario: Scenario,
                     staff: dict[str, str]) -> dict[str, Any] | None:
        if scenario.case is None:
            return None
        body = {"person": {"id_number": scenario.case["person_id"]},
                "confirmed_at": scenario.case["confirmed_at"]}
        deadline = time.monotonic() + 600
        while True:
            answer = client.post("/v1/cases", headers=staff, json=body)
            if answer.status_code == 201:
                return dict(answer.json())
            if answer.status_code != 503 or time.monotonic() > deadline:
                raise RuntimeError(f"case report: {answer.status_code} {answer.text}")
            time.sleep(1)  # the worker is still catching up: the API said when to retry

    def _wait_quiet(self, bootstrap: str, worker: ManagedProcess) -> None:
        """Until the worker has committed every record of its input topics (ward
        summaries and alerts follow declarations through internal topics)."""
        try:
            wait_until_consumed(bootstrap, APP_ID,
                                [DECLARATIONS, f"{APP_ID}-ward-hours-v2", ALERTS],
                                timeout_s=900, alive=worker.alive)
        except RuntimeError as exc:
            raise ServiceStartError(f"worker died:\n{log_tail(worker.log_path)}") from exc


def _wait(client: httpx.Client, path: str, api: ManagedProcess, log: Path,
          also: ManagedProcess | None = None, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in (api, also):
            if proc is not None and not proc.alive():
                raise ServiceStartError(f"{proc.name} exited:\n{log_tail(proc.log_path)}")
        try:
            if client.get(path).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise ServiceStartError(f"API not answering {path} within {timeout_s} s:\n{log_tail(log)}")


def _post_batch(client: httpx.Client, items: list[dict[str, Any]],
                front: dict[str, str]) -> None:
    """Send a batch until every item is in Kafka (a 503 names the items to send again;
    the ones accepted before come back as duplicates)."""
    pending = items
    for _ in range(60):
        answer = client.post("/v1/declarations/batch", headers=front,
                             json={"declarations": pending})
        if answer.status_code == 429:
            time.sleep(float(answer.headers.get("Retry-After", "1")))
            continue
        if answer.status_code not in {200, 503}:
            raise RuntimeError(f"batch answered {answer.status_code}: {answer.text[:500]}")
        body = answer.json()
        if body["invalid"]:
            raise RuntimeError(f"invalid items: {[i for i in body['items'] if i['errors']]}")
        pending = [pending[i["index"]] for i in body["items"]
                   if i["status"] not in {"accepted", "duplicate"}]
        if not pending:
            return
        time.sleep(float(answer.headers.get("Retry-After", "1")))
    raise RuntimeError("the API kept refusing a batch for a minute")


def _all_alerts(client: httpx.Client, staff: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/alerts", headers=staff, params=params)
        page.raise_for_status()
        body = page.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items

"""``make up`` (``python -m deploy.up``) with two workers restarts a crashed worker and a
crashed API, as a container runtime would, and the system works again afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from deploy.localsvc import free_port
from tests.integration.conftest import good_name, wait_for

pytestmark = pytest.mark.integration

KEY, TOKEN = "up-ingest-key-0123456789", "up-staff-token-0123456789"


class Output(threading.Thread):
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.lines: list[str] = []

    def run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def test_up_restarts_a_crashed_worker_and_api(tmp_path: Path) -> None:
    api_port, worker_port = free_port(), free_port()
    env = {**os.environ, "VHC_RUN_DIR": str(tmp_path / "run"), "VHC_SIMULATE": "0",
           "VHC_WORKERS": "2", "VHC_API_PORT": str(api_port),
           "VHC_UP_KAFKA_PORT": str(free_port()), "VHC_UP_REDIS_PORT": str(free_port()),
           "VHC_METRICS_PORT": str(worker_port), "VHC_NOTIFIER_METRICS_PORT": str(free_port()),
           "VHC_UP_PROMETHEUS_PORT": str(free_port()), "VHC_INGEST_KEYS": KEY,
           "VHC_STAFF_TOKENS": TOKEN, "VHC_PSEUDONYM_SECRET": "up-pseudonym-0123456789abcdef"}
    env.pop("VHC_WEBHOOK_URLS", None)
    proc = subprocess.Popen([sys.executable, "-m", "deploy.up"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = Output(proc)
    out.start()
    base = f"http://127.0.0.1:{api_port}"
    try:
        wait_for(lambda: out.has("vhc-watch is up") or proc.poll() is not None, 180, "make up")
        assert out.has("vhc-watch is up"), "\n".join(out.lines)
        assert out.has("Stream workers: 2")
        pids = tmp_path / "run" / "pids"
        for name in ("worker-1", "api"):
            os.kill(int((pids / f"{name}.pid").read_text()), signal.SIGKILL)
        wait_for(lambda: out.has("worker-1 restarted") and out.has("api restarted"), 60,
                 "both restarts")

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
            except httpx.TransportError:
                return False
        wait_for(ready, 90, "the restarted API ready")
        staff, key = {"Authorization": f"Bearer {TOKEN}"}, {"X-API-Key": KEY}
        cid = f"UP-{uuid.uuid4().hex[:6]}"
        made = httpx.post(f"{base}/v1/checkpoints", headers=staff, json={
            "checkpoint_id": cid, "name": good_name("Cửa hàng", cid, "08749"), "kind": "shop",
            "ward_code": "08749", "address": "Số 1"}, timeout=30)
        assert made.status_code == 201, made.text
        for _ in range(20):
            sent = httpx.post(f"{base}/v1/declarations", headers=key, timeout=30, json={
                "declaration_id": str(uuid.uuid4()), "checkpoint_id": cid,
                "scanned_at": (datetime.now(UTC) - timedelta(minutes=2)).isoformat(),
                "person": {"phone": "0912345678"}})
            assert sent.status_code == 202, sent.text
        # Within 150 s: a worker whose consumer stalls after the rebalance (faust's; seen in
        # about one run of this test in four, 6/7) is sought back or restarted by its
        # watchdogs within about a minute (README, "Every alert once, across crashes").
        try:
            wait_for(lambda: httpx.get(f"{base}/v1/checkpoints/{cid}/stats", headers=staff,
                                       timeout=10).json()["windows"]["1h"]["total"] == 20,
                     150, "the count after the restarts")
        except AssertionError as exc:
            # What the next look needs: the count, each worker's lag and records per
            # partition as it sees them, and its log's end (the stall still seen now and
            # then, README "Every alert once, across crashes").
            logs = tmp_path / "run" / "logs"
            stats = httpx.get(f"{base}/v1/checkpoints/{cid}/stats", headers=staff, timeout=10)
            seen = [f"stats: {stats.text[:300]}"]
            for port in (worker_port, worker_port + 1):
                try:
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                except httpx.TransportError as down:
                    text = f"unreachable: {down}"
                seen.append(f"--- worker metrics :{port} ---\n" + "\n".join(
                    line for line in text.splitlines() if line.startswith(
                        ("vhc_worker_consumer_lag", "vhc_worker_records", "vhc_worker_offset"))))
            raise AssertionError("\n".join(
                [str(exc), *seen, *(f"--- {log.name} ---\n" + "\n".join(
                    log.read_text(errors="replace").splitlines()[-60:])
                    for log in sorted(logs.glob("worker-*.log")))])) from None

        def serves_metrics(port: int) -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200
            except httpx.TransportError:
                return False

        # Both workers serve metrics again; within a minute, since a watchdog's self-restart
        # (exit code 75, above) may have come just before the count did.
        for port in (worker_port, worker_port + 1):
            wait_for(lambda port=port: serves_metrics(port), 60, f"metrics on port {port}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        out.join(5)
        print("\n".join(out.lines[-30:]))
    assert code == 0 and out.has("all stopped"), "\n".join(out.lines[-30:])

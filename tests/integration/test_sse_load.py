"""500 open alert streams do not starve ingest: declarations still get 202 quickly, and
one new alert reaches every stream (one Redis reader fanned out). Streams per credential
are capped. The same API runs the strict naming mode."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer
from tests.integration.conftest import INGEST_KEY, Api, good_name, service_env, start_api

pytestmark = pytest.mark.integration

TOKENS = [f"it-load-token-{i:02d}-0123456789" for i in range(30)]
STREAMS = 500
PER_TOKEN = 20


@pytest.fixture(scope="module")
def load_api(kafka: KafkaBroker, redis_server: RedisServer, worker: ManagedProcess,
             run_dir: Path) -> Iterator[Api]:
    env = service_env(kafka, redis_server, run_dir, VHC_STAFF_TOKENS=",".join(TOKENS),
                      VHC_NAMING_MODE="strict", VHC_SSE_MAX_PER_TOKEN=str(PER_TOKEN),
                      VHC_SSE_KEEPALIVE_S="2")
    api = start_api(env, run_dir / "api-load.log", wait_ready=True)
    yield api
    api.client.close()
    api.process.stop()


def test_strict_naming_refuses_with_every_rule(load_api: Api) -> None:
    staff = {"Authorization": f"Bearer {TOKENS[0]}"}
    answer = load_api.client.post("/v1/checkpoints", headers=staff, json={
        "name": "Cho Xuan Hoa", "kind": "market", "ward_code": "08749", "address": "Xuân Hòa"})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert {d["type"] for d in detail} == {"naming_format", "naming_missing_diacritics"}
    assert all(d["loc"] == ["body", "name"] for d in detail)
    assert detail[0]["suggestion"] == "Chợ Xuân Hòa - Phường Xuân Hòa - Tỉnh Phú Thọ"
    ok = load_api.client.post("/v1/checkpoints", headers=staff, json={
        "name": detail[0]["suggestion"] + " ", "kind": "market", "ward_code": "08749",
        "address": "Xuân Hòa", "checkpoint_id": f"ST-{uuid.uuid4().hex[:6]}"})
    assert ok.status_code == 201 and ok.json()["naming"]["conforms"]


async def test_500_streams_do_not_starve_ingest(load_api: Api) -> None:
    staff0 = {"Authorization": f"Bearer {TOKENS[0]}"}
    cid = f"SSE-{uuid.uuid4().hex[:6]}"
    assert load_api.client.post("/v1/checkpoints", headers=staff0, json={
        "checkpoint_id": cid, "name": good_name("Cửa hàng", cid, "08749"), "kind": "shop",
        "ward_code": "08749", "address": "Xuân Hòa"}).status_code == 201
    limits = httpx.Limits(max_connections=STREAMS + 50, max_keepalive_connections=0)
    timeout = httpx.Timeout(60, connect=30)
    async with httpx.AsyncClient(base_url=load_api.base_url, limits=limits,
                                 timeout=timeout) as client:
        opened = asyncio.Event()
        ready = 0
        received: dict[int, list[str]] = {}
        stop = asyncio.Event()

        async def stream(i: int) -> None:
            nonlocal ready
            headers = {"Authorization": f"Bearer {TOKENS[i // PER_TOKEN]}"}  # 20 each
            async with client.stream("GET", "/v1/alerts/stream", headers=headers) as answer:
                assert answer.status_code == 200
                lines = answer.aiter_lines()
                async for line in lines:
                    if line.startswith("retry:"):
                        ready += 1
                        if ready == STREAMS:
                            opened.set()
                    if line.startswith("data:") and cid in line:
                        received.setdefault(i, []).append(line)
                        return
                    if stop.is_set():
                        return

        tasks = [asyncio.create_task(stream(i)) for i in range(STREAMS)]
        await asyncio.wait_for(opened.wait(), 120)
        # A 21st stream for a token that has 20 is refused.
        async with client.stream("GET", "/v1/alerts/stream",
                                 headers={"Authorization": f"Bearer {TOKENS[0]}"}) as over:
            assert over.status_code == 429
        assert ready >= STREAMS
        # Ingest while every stream is open: all 202, quickly.
        latencies = []
        for i in range(60):
            body = {"declaration_id": str(uuid.uuid4()), "checkpoint_id": cid,
                    "scanned_at": datetime.now(UTC).isoformat(),
                    "person": {"id_number": f"{100000000 + i}"},
                    "contact": "f0" if i == 59 else "none"}
            started = time.perf_counter()
            answer = await client.post("/v1/declarations", json=body,
                                       headers={"X-API-Key": INGEST_KEY})
            latencies.append(time.perf_counter() - started)
            assert answer.status_code == 202, answer.text
        p95 = statistics.quantiles(latencies, n=20)[-1]
        print(f"{STREAMS} streams open: POST /v1/declarations median "
              f"{statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
        assert p95 < 0.5, f"p95 {p95:.3f} s with {STREAMS} streams open"
        # The f0 declaration's critical alert reaches every one of the 500 streams.
        done, pending = await asyncio.wait(tasks, timeout=60)
        stop.set()
        for task in pending:
            task.cancel()
        failed = [t.exception() for t in done if t.exception() is not None]
        assert not failed, failed[:3]
        assert len(received) == STREAMS, f"{len(received)} of {STREAMS} streams got the alert"

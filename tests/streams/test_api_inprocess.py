"""The API in-process (httpx's ASGI transport, the app's own lifespan) with a real Redis:
roles and areas decided without a network hop or a spawned process. Kafka is not needed
for these routes; it is given as an address nothing listens on, so anything that would
publish answers 503."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from deploy.localsvc import free_port
from ingest_api.config import ApiSettings
from ingest_api.main import create_app
from vhc_common import redis_keys
from vhc_common.schemas import CheckpointEvent

ADMIN = "inproc-admin-token-0123456789"
VIEWER = "inproc-viewer-token-0123456789"
RESPONDER = "inproc-responder-token-0123456789"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    url = redis_url.rsplit("/", 1)[0] + "/9"
    settings = ApiSettings(
        environment="development", kafka_bootstrap=f"127.0.0.1:{free_port()}", redis_url=url,
        ingest_keys="inproc-ingest-key-0123456789",
        staff_tokens=f"{ADMIN},{VIEWER}:viewer:08749,{RESPONDER}:responder:01",
        pseudonym_secret="inproc-pseudonym-9f8e7d6c5b4a3", publish_timeout_s=1)
    redis = Redis.from_url(url)
    await redis.flushdb()
    cp = CheckpointEvent.model_validate({
        "checkpoint_id": "IN-HN", "name": "Chợ Ba Đình", "kind": "market",
        "ward_code": "00004", "ward_name": "Phường Ba Đình", "province_code": "01",
        "province_name": "Hà Nội", "address": "Số 1", "opening_hours": None,
        "created_at": "2026-11-26T00:00:00+00:00", "updated_at": "2026-11-26T00:00:00+00:00"})
    await redis.set(redis_keys.checkpoint("IN-HN"), cp.model_dump_json())
    await redis.zadd(redis_keys.checkpoint_index(), {"IN-HN": 0})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            yield c
    await redis.aclose()


def bearer(token: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"}


async def test_roles_and_areas_in_process(client: httpx.AsyncClient) -> None:
    me = (await client.get("/v1/me", headers=bearer(VIEWER))).json()
    assert (me["role"], me["area"]) == ("viewer", "08749")
    assert (await client.get("/v1/me")).status_code == 401
    # A checkpoint in Hà Nội: the Phú Thọ ward viewer may not see it, the Hà Nội responder
    # and the admin may.
    assert (await client.get("/v1/checkpoints/IN-HN", headers=bearer(VIEWER))).status_code \
        == 403
    for token in (RESPONDER, ADMIN):
        found = await client.get("/v1/checkpoints/IN-HN", headers=bearer(token))
        assert found.status_code == 200 and found.json()["ward_code"] == "00004"
    listed = (await client.get("/v1/checkpoints", headers=bearer(VIEWER))).json()
    assert listed["items"] == []
    # Roles are checked before anything is published: 403, not the 503 Kafka would give.
    for token in (VIEWER, RESPONDER):
        refused = await client.post("/v1/cases", headers=bearer(token), json={
            "person": {"phone": "0912345678"}, "confirmed_at": "2026-11-26T08:00:00+07:00"})
        assert refused.status_code == 403, refused.text
    put = await client.put("/v1/outbreak-areas", headers=bearer(RESPONDER),
                           json={"areas": ["79"]})
    assert put.status_code == 403
    # The admin gets through to the broker, which is not there: a prompt, clear 503 (the
    # producer's constructor used to wait 30 s for a broker first).
    started = time.monotonic()
    down = await client.put("/v1/outbreak-areas", headers=bearer(ADMIN),
                            json={"areas": ["79"]})
    assert down.status_code == 503 and "Retry-After" in down.headers
    assert time.monotonic() - started < 5

"""The alert event stream (SSE) holds alerts' evidence, pseudonymous keys included: entries
older than the retention are trimmed, on insert and when the worker calls ``trim``."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from vhc_common.alert_view import EVENTS, AlertView

DAY_MS = 86_400_000


@pytest.fixture
async def client(redis_url: str) -> Redis:
    redis = Redis.from_url(redis_url)
    await redis.delete(EVENTS)
    return redis


async def test_entries_older_than_the_retention_are_trimmed(client: Redis) -> None:
    view = AlertView(client, retention_s=21 * 86_400)
    now_ms = 100 * DAY_MS
    for age_days in (30, 22, 20, 1):
        await client.xadd(EVENTS, {"alert": "{}"}, id=f"{now_ms - age_days * DAY_MS}-0")
    assert await view.trim(now_ms=now_ms) == 2
    left = [int(i.decode().split("-")[0]) for i, _ in await client.xrange(EVENTS)]
    assert left == [now_ms - 20 * DAY_MS, now_ms - DAY_MS]
    assert await view.trim(now_ms=now_ms) == 0
    await client.aclose()

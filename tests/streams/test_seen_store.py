"""The ingest's idempotency claims on a real Redis: a claim belongs to the request that
made it, so a late release from another request cannot free it (7/7 review, item 6)."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from ingest_api.store import SeenStore
from vhc_common import redis_keys


@pytest.fixture
async def seen(redis_url: str) -> SeenStore:
    client = Redis.from_url(redis_url)
    await client.zadd(redis_keys.checkpoint_index(), {"CP-1": 0})
    await client.set(redis_keys.restored_marker("api"), "1")
    return SeenStore(client, retention_s=3600, pending_ttl_s=30)


async def test_claims_are_owned(seen: SeenStore) -> None:
    did = str(uuid.uuid4())
    assert await seen.claim_registered([(did, "CP-1")], owner="a") == ["claimed"]
    assert await seen.claim_registered([(did, "CP-1")], owner="b") == ["pending"]
    assert await seen.release([did], owner="b") == 0  # not b's to free
    assert await seen.claim_registered([(did, "CP-1")], owner="c") == ["pending"]
    assert await seen.release([did], owner="a") == 1
    assert await seen.claim_registered([(did, "CP-1")], owner="c") == ["claimed"]


async def test_confirmed_ids_are_done_and_cannot_be_released(seen: SeenStore) -> None:
    did = str(uuid.uuid4())
    assert await seen.claim_registered([(did, "CP-1")], owner="a") == ["claimed"]
    await seen.confirm([did])
    assert await seen.release([did], owner="a") == 0
    assert await seen.claim_registered([(did, "CP-1")], owner="b") == ["done"]


async def test_unknown_checkpoints_claim_nothing(seen: SeenStore) -> None:
    did = str(uuid.uuid4())
    assert await seen.claim_registered([(did, "NOPE")], owner="a") == ["unknown"]
    assert await seen.claim_registered([(did, "CP-1")], owner="b") == ["claimed"]


async def test_a_store_that_lost_its_data_claims_nothing(seen: SeenStore,
                                                         redis_url: str) -> None:
    """Without the API's restored marker (Redis flushed, or new) the registry view cannot
    be trusted: every item is "lost" (answered 503), nothing is claimed."""
    client = Redis.from_url(redis_url)
    await client.delete(redis_keys.restored_marker("api"))
    did = str(uuid.uuid4())
    assert await seen.claim_registered([(did, "CP-1"), (did + "x", "NOPE")],
                                       owner="a") == ["lost", "lost"]
    assert await client.get(redis_keys.declaration_seen(did)) is None
    await client.set(redis_keys.restored_marker("api"), "1")
    assert await seen.claim_registered([(did, "CP-1")], owner="a") == ["claimed"]
    await client.aclose()

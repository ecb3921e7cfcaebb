"""Noticing a Redis loss, and "done" marks that a loss takes back: on a real redis-server.

The case look-up answers only for partitions whose exposure index the worker marked
complete; a mark written after a loss that wiped part of the replayed index would let a
case be answered without its visits (seen once in CI: ``visits: 0`` after a flush)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from ingest_api.exposure import ExposureService, WorkerBehindError
from vhc_common import redis_keys
from vhc_common.redis_loss import RedisLossGuard


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def test_a_loss_is_noticed_once_and_changes_the_generation(client: Redis) -> None:
    guard = RedisLossGuard(client, "worker:test")
    assert await guard.lost()  # a new Redis: the role's views were never put there
    first = guard.generation
    await guard.mark_restored()
    assert not await guard.lost()
    assert guard.generation == first
    assert await RedisLossGuard(client, "worker:test").lost() is False  # a second process

    await client.flushdb()
    assert await guard.lost()
    assert guard.generation != first
    assert not await guard.lost()  # noticed once


async def test_the_marker_keeps_its_generation_and_ttl(client: Redis) -> None:
    guard = RedisLossGuard(client, "worker:test")
    await guard.lost()
    keys = [k async for k in client.scan_iter(match=redis_keys.instance_marker("*"))]
    assert len(keys) == 1
    assert (await client.get(keys[0])).decode() == guard.generation
    await client.expire(keys[0], 10)
    assert not await guard.lost()
    assert await client.ttl(keys[0]) > 10  # refreshed, value kept
    assert (await client.get(keys[0])).decode() == guard.generation


async def test_a_mark_is_written_only_in_the_generation_it_was_started_in(
        client: Redis) -> None:
    guard = RedisLossGuard(client, "worker:test")
    await guard.lost()
    key = redis_keys.exposure_indexed()
    started = guard.generation
    assert await guard.hset_if_generation(started, key, {"0": "1", "3": "1"})
    assert await client.hgetall(key) == {b"0": b"1", b"3": b"1"}

    # Lost and not yet noticed: the marker is gone, so nothing is written.
    await client.flushdb()
    assert not await guard.hset_if_generation(started, key, {"0": "1"})
    assert await client.exists(key) == 0

    # Lost and noticed: the replay started before the loss may not mark; a new one may.
    assert await guard.lost()
    assert not await guard.hset_if_generation(started, key, {"0": "1"})
    assert await client.exists(key) == 0
    assert await guard.hset_if_generation(guard.generation, key, {"0": "1"})
    assert await client.hgetall(key) == {b"0": b"1"}


async def test_the_case_look_up_waits_for_the_index_marks(client: Redis) -> None:
    """Processed offsets past the end offsets do not suffice: a partition whose index is
    not marked complete keeps the look-up waiting (503 at the deadline)."""
    service = ExposureService(
        redis=client, publisher=cast(Any, None), alerts=cast(Any, None),
        checkpoints=cast(Any, None), bootstrap="127.0.0.1:1", lookback=timedelta(days=14),
        window=timedelta(hours=1), catch_up_timeout_s=0.3)
    ends = {0: 5, 1: 0, 2: 7}  # partition 1 holds nothing: nothing to wait for
    await client.hset(redis_keys.processed_offsets(), mapping={"0": 5, "2": 9})
    with pytest.raises(WorkerBehindError, match=r"exposure index of partitions \[0, 2\]"):
        await service._wait_for_worker(ends)
    await client.hset(redis_keys.exposure_indexed(), mapping={"0": "1"})
    with pytest.raises(WorkerBehindError, match=r"partitions \[2\]"):
        await service._wait_for_worker(ends)
    await client.hset(redis_keys.exposure_indexed(), mapping={"2": "1"})
    await service._wait_for_worker(ends)
    await client.hset(redis_keys.processed_offsets(), mapping={"2": 6})
    with pytest.raises(WorkerBehindError, match=r"not caught up with partitions \[2\]"):
        await service._wait_for_worker(ends)

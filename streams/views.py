"""The Redis view of the live counts, read by the API (``GET /v1/checkpoints/{id}/stats``).

Each hour bucket is copied as packed bytes to ``vhc:stats:<checkpoint>:<hour>`` and expires
once no 24-hour window ending at the wall clock can reach it. The view can always be
rebuilt from the tables (each batch rewrites the buckets it touched).
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from detectors.counts import HOUR_MS
from streams.counting import CountingResult, RawRecord
from vhc_common import redis_keys
from vhc_common.schemas import DeclarationEvent

__all__ = ["VIEW_KEEP_MS", "write_processed_offsets", "write_stats_view", "write_visits"]

# The longest window (24 h) plus an hour of margin for clock skew between processes.
VIEW_KEEP_MS = 25 * HOUR_MS


async def write_stats_view(redis: Redis, result: CountingResult, *, now_ms: int) -> None:
    if not result.buckets and not result.removed:
        return
    pipe = redis.pipeline(transaction=False)
    for (checkpoint_id, hour), bucket in result.buckets.items():
        key = redis_keys.stats_bucket(checkpoint_id, hour)
        expire_at_ms = (hour + 1) * HOUR_MS + VIEW_KEEP_MS
        if expire_at_ms <= now_ms:
            pipe.delete(key)  # replayed history that no window ending now can reach
        else:
            pipe.set(key, bucket.encode(), pxat=expire_at_ms)
    for checkpoint_id, hour in result.removed:
        pipe.delete(redis_keys.stats_bucket(checkpoint_id, hour))
    for checkpoint_id, newest_ms in result.newest_ms.items():
        # Only ever raised, so concurrent or replayed writers cannot move it back.
        pipe.eval(_SET_MAX, 1, redis_keys.stats_last(checkpoint_id), newest_ms)
    await pipe.execute()


async def write_visits(redis: Redis, events: Sequence[DeclarationEvent], *,
                       retention_ms: int) -> None:
    """The exposure index: check-ins by person key and by checkpoint, kept for retention.

    Pseudonymous keys only; idempotent (sorted-set members are per declaration).
    """
    if not events:
        return
    pipe = redis.pipeline(transaction=False)
    touched: set[str] = set()
    newest = 0
    for e in events:
        at_ms = int(e.scanned_at.timestamp() * 1000)
        newest = max(newest, at_ms)
        did = str(e.declaration_id)
        for person_key in {e.person.key, e.person.id_key, e.person.phone_key} - {None}:
            key = redis_keys.visits_of_person(str(person_key))
            pipe.zadd(key, {f"{e.checkpoint_id}|{did}": at_ms})
            touched.add(key)
        key = redis_keys.visits_at(e.checkpoint_id)
        pipe.zadd(key, {f"{e.person.key}|{did}": at_ms})
        touched.add(key)
    for key in touched:
        pipe.zremrangebyscore(key, "-inf", f"({newest - retention_ms}")
        pipe.pexpire(key, retention_ms)
    await pipe.execute()


async def write_processed_offsets(redis: Redis, records: Sequence[RawRecord]) -> None:
    """After a batch's views are written: the next offset per partition (only raised)."""
    nxt: dict[int, int] = {}
    for r in records:
        nxt[r.partition] = max(nxt.get(r.partition, 0), r.offset + 1)
    if not nxt:
        return
    pipe = redis.pipeline(transaction=False)
    for partition, offset in nxt.items():
        pipe.eval(_HSET_MAX, 1, redis_keys.processed_offsets(), partition, offset)
    await pipe.execute()


_HSET_MAX = """
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
"""

_SET_MAX = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
"""

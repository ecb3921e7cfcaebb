"""The Redis view of the live counts, read by the API (``GET /v1/checkpoints/{id}/stats``).

Each hour bucket is copied as packed bytes to ``vhc:stats:<checkpoint>:<hour>`` and expires
once no 24-hour window ending at the wall clock can reach it. The view can always be
rebuilt from the tables (each batch rewrites the buckets it touched).
"""

from __future__ import annotations

from redis.asyncio import Redis

from detectors.counts import HOUR_MS
from streams.counting import CountingResult
from vhc_common import redis_keys

__all__ = ["VIEW_KEEP_MS", "write_stats_view"]

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


_SET_MAX = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
"""

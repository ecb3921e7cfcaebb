"""The Redis view of the live counts, read by the API (``GET /v1/checkpoints/{id}/stats``).

Each hour bucket is copied as packed bytes to ``vhc:stats:<checkpoint>:<hour>`` and expires
once no 24-hour window ending at the wall clock can reach it. The view can always be
rebuilt from the tables (each batch rewrites the buckets it touched).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from streams.counting import CountingResult
from vhc_common import fastjson, redis_keys
from vhc_common.schemas import DeclarationEvent
from vhc_common.timebase import HOUR_MS, to_ms

__all__ = [
    "VIEW_KEEP_MS",
    "daily_totals",
    "raise_processed_offsets",
    "stats_view",
    "visits",
    "write_views",
]

# The longest window (24 h) plus an hour of margin for clock skew between processes.
VIEW_KEEP_MS = 25 * HOUR_MS


async def write_views(redis: Redis, result: CountingResult, offsets: Mapping[int, int], *,
                      now_ms: int, retention_ms: int,
                      daily: Mapping[tuple[str, str], int]) -> None:
    """Every Redis view a batch changes, in one round trip; the processed offsets last
    (``offsets``: partition -> the offset below which every record was applied,
    ``BatchOutput.applied``). A pipeline runs in order, so readers of the offsets see the
    views of those records."""
    pipe = redis.pipeline(transaction=False)
    stats_view(pipe, result, now_ms=now_ms)
    visits(pipe, [c.event for c in result.events], retention_ms=retention_ms)
    daily_totals(pipe, daily, retention_ms=retention_ms)
    raise_processed_offsets(pipe, offsets)
    await pipe.execute()


def daily_totals(pipe: Pipeline, daily: Mapping[tuple[str, str], int], *,
                 retention_ms: int) -> None:
    """Declarations per checkpoint and local day (absolute values: replays change nothing).
    Two commands a day the batch touched, not two per checkpoint and day: at 2,000
    checkpoints a batch touched 1,800 of those, and redis-py's packing and parsing of
    3,600 commands was most of the batch's Redis time."""
    by_date: dict[str, dict[FieldT, EncodableT]] = {}
    for (checkpoint_id, date), total in daily.items():
        by_date.setdefault(date, {})[checkpoint_id] = total
    for date, totals in by_date.items():
        key = redis_keys.daily_totals(date)
        pipe.hset(key, mapping=totals)
        pipe.pexpire(key, retention_ms)


def stats_view(pipe: Pipeline, result: CountingResult, *, now_ms: int) -> None:
    """The batch's hour buckets and each checkpoint's newest time, as a few script calls
    (one command per bucket cost more in redis-py's packing and parsing than the rest of
    the worker's own work)."""
    sets: list[tuple[str, bytes, int]] = []
    deletes: list[str] = []
    encoded = result.encoded
    for (checkpoint_id, hour), bucket in result.buckets.items():
        key = redis_keys.stats_bucket(checkpoint_id, hour)
        expire_at_ms = (hour + 1) * HOUR_MS + VIEW_KEEP_MS
        if expire_at_ms <= now_ms:
            deletes.append(key)  # replayed history that no window ending now can reach
        else:
            data = encoded.get((checkpoint_id, hour))
            sets.append((key, bucket.encode() if data is None else data, expire_at_ms))
    deletes.extend(redis_keys.stats_bucket(cid, hour) for cid, hour in result.removed)
    for i in range(0, len(sets), _CHUNK):
        chunk = sets[i:i + _CHUNK]
        pipe.eval(_SET_ALL, len(chunk), *(k for k, _, _ in chunk),
                  *(a for _, v, at in chunk for a in (v, at)))
    for i in range(0, len(deletes), _CHUNK):
        pipe.delete(*deletes[i:i + _CHUNK])
    newest = list(result.newest_ms.items())
    for i in range(0, len(newest), _CHUNK):
        part = newest[i:i + _CHUNK]
        # Only ever raised, so concurrent or replayed writers cannot move it back.
        pipe.eval(_SET_MAX, len(part), *(redis_keys.stats_last(cid) for cid, _ in part),
                  *(ms for _, ms in part))


def visits(pipe: Pipeline, events: Sequence[DeclarationEvent], *, retention_ms: int) -> None:
    """The exposure index: check-ins by person key and by checkpoint, kept for retention.

    Pseudonymous keys only; idempotent (sorted-set members are per declaration). Every key
    gets the retention as TTL on each write, and every key a batch writes is trimmed of
    entries older than the retention (relative to the newest entry the batch wrote to
    it), so nothing personal outlives the retention in a key that keeps being written.
    Written by a script per chunk of keys, not six commands per declaration.
    """
    entries: dict[str, list[tuple[int, str]]] = {}
    for e in events:
        at_ms = to_ms(e.scanned_at)
        did = str(e.declaration_id)
        for person_key in {e.person.key, e.person.id_key, e.person.phone_key} - {None}:
            entries.setdefault(redis_keys.visits_of_person(str(person_key)), []).append(
                (at_ms, f"{e.checkpoint_id}|{did}"))
        entries.setdefault(redis_keys.visits_at(e.checkpoint_id), []).append(
            (at_ms, f"{e.person.key}|{did}"))
    # The entries go as one JSON argument per call: as arguments of their own (two per
    # entry, 35,000 for a batch of 5,000) redis-py's packing was 7% of the worker.
    keys: list[str] = []
    rows: list[list[str | int]] = []
    held = 0
    for key, items in entries.items():
        row: list[str | int] = [f"({max(at for at, _ in items) - retention_ms}"]
        for at_ms, member in items:
            row.append(at_ms)
            row.append(member)
        keys.append(key)
        rows.append(row)
        held += len(items)
        if held >= _CHUNK:
            pipe.eval(_VISITS, len(keys), *keys, retention_ms, fastjson.dumps_bytes(rows))
            keys, rows, held = [], [], 0
    if keys:
        pipe.eval(_VISITS, len(keys), *keys, retention_ms, fastjson.dumps_bytes(rows))


def raise_processed_offsets(pipe: Pipeline, offsets: Mapping[int, int]) -> None:
    """Raise (never lower) the processed offsets the case look-up waits for."""
    for partition, offset in offsets.items():
        pipe.eval(_HSET_MAX, 1, redis_keys.processed_offsets(), partition, offset)


_HSET_MAX = """
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
"""

# Keys (or key and value pairs) per script call: a call blocks Redis while it runs.
_CHUNK = 500

_SET_MAX = """
for i, key in ipairs(KEYS) do
  local cur = tonumber(redis.call('GET', key) or '0')
  if tonumber(ARGV[i]) > cur then redis.call('SET', key, ARGV[i]) end
end
return 0
"""

_SET_ALL = """
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[2 * i - 1], 'PXAT', ARGV[2 * i])
end
return 0
"""

# ARGV: retention (ms), then a JSON list with a row per key: the exclusive trim bound and
# the (score, member) pairs.
_VISITS = """
local retention = ARGV[1]
local rows = cjson.decode(ARGV[2])
for i, key in ipairs(KEYS) do
  local row = rows[i]
  for j = 2, #row, 2 do
    redis.call('ZADD', key, row[j], row[j + 1])
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', row[1])
  redis.call('PEXPIRE', key, retention)
end
return 0
"""

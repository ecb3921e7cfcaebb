"""The worker's batch views are written by a few server-side scripts (6/7: one redis-py
command per check-in cost more than the rest of the worker's work) and the daily totals by
a command per day, not per checkpoint and day. What they leave in Redis must equal what
the plain commands left: the same keys, members, scores, values and expiry, across
script-call chunks, with a trim and a delete in the batch."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from detectors.counts import CountedDeclaration, HourBucket, declaration_key
from detectors.flags import DeclarationFlags
from streams import views
from streams.counting import CountingResult
from vhc_common import redis_keys
from vhc_common.schemas import DeclarationEvent, PersonRef
from vhc_common.timebase import HOUR_MS, to_ms

RETENTION_MS = 2 * 86_400_000
# Relative to the wall clock: the buckets' expiry is an absolute time Redis keeps by its
# own clock (a fixed date here once passed, and every bucket the test wrote expired as it
# was written).
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def reference_visits(pipe: Pipeline, events: Sequence[DeclarationEvent], *,
                     retention_ms: int) -> None:
    """The command-per-entry form the scripts replaced."""
    newest: dict[str, int] = {}
    for e in events:
        at_ms = to_ms(e.scanned_at)
        did = str(e.declaration_id)
        for person_key in {e.person.key, e.person.id_key, e.person.phone_key} - {None}:
            key = redis_keys.visits_of_person(str(person_key))
            pipe.zadd(key, {f"{e.checkpoint_id}|{did}": at_ms})
            newest[key] = max(newest.get(key, at_ms), at_ms)
        key = redis_keys.visits_at(e.checkpoint_id)
        pipe.zadd(key, {f"{e.person.key}|{did}": at_ms})
        newest[key] = max(newest.get(key, at_ms), at_ms)
    for key, at_ms in newest.items():
        pipe.zremrangebyscore(key, "-inf", f"({at_ms - retention_ms}")
        pipe.pexpire(key, retention_ms)


def reference_stats(pipe: Pipeline, result: CountingResult, *, now_ms: int) -> None:
    for (checkpoint_id, hour), bucket in result.buckets.items():
        key = redis_keys.stats_bucket(checkpoint_id, hour)
        expire_at_ms = (hour + 1) * HOUR_MS + views.VIEW_KEEP_MS
        if expire_at_ms <= now_ms:
            pipe.delete(key)
        else:
            pipe.set(key, bucket.encode(), pxat=expire_at_ms)
    for checkpoint_id, hour in result.removed:
        pipe.delete(redis_keys.stats_bucket(checkpoint_id, hour))
    for checkpoint_id, newest_ms in result.newest_ms.items():
        pipe.eval("local c = tonumber(redis.call('GET', KEYS[1]) or '0') "
                  "if tonumber(ARGV[1]) > c then redis.call('SET', KEYS[1], ARGV[1]) end "
                  "return 0", 1, redis_keys.stats_last(checkpoint_id), newest_ms)


def reference_daily(pipe: Pipeline, daily: dict[tuple[str, str], int], *,
                    retention_ms: int) -> None:
    for (checkpoint_id, date), total in daily.items():
        key = redis_keys.daily_totals(date)
        pipe.hset(key, checkpoint_id, total)
        pipe.pexpire(key, retention_ms)


def daily_of(events: Sequence[DeclarationEvent]) -> dict[tuple[str, str], int]:
    daily: Counter[tuple[str, str]] = Counter()
    for e in events:
        daily[(e.checkpoint_id, e.scanned_at.date().isoformat())] += 1
    return dict(daily)


def batch(rng: random.Random, n: int, start: datetime) -> list[DeclarationEvent]:
    people = [f"{rng.getrandbits(128):032x}" for _ in range(n // 3)]
    out = []
    for i in range(n):
        at = start + timedelta(minutes=rng.randrange(0, 5 * 24 * 60))
        out.append(DeclarationEvent(
            declaration_id=UUID(int=rng.getrandbits(128)),
            checkpoint_id=f"CP-{rng.randrange(7)}", scanned_at=at, received_at=at,
            person=PersonRef(key=rng.choice(people),
                             id_key=f"{i:032x}" if rng.random() < 0.3 else None,
                             phone_key=rng.choice(people) if rng.random() < 0.2 else None)))
    return out


def counting(rng: random.Random, events: Sequence[DeclarationEvent]) -> CountingResult:
    result = CountingResult()
    for e in events:
        at_ms = to_ms(e.scanned_at)
        hour = at_ms // HOUR_MS
        bucket = result.buckets.setdefault((e.checkpoint_id, hour), HourBucket(hour))
        bucket.add(CountedDeclaration(key=declaration_key(e.declaration_id), scanned_at_ms=at_ms,
                                      flags=DeclarationFlags.NONE, offset=0))
        result.newest_ms[e.checkpoint_id] = max(result.newest_ms.get(e.checkpoint_id, 0),
                                                at_ms)
    result.removed = [(f"CP-{rng.randrange(7)}", to_ms(NOW) // HOUR_MS - 40 - i)
                      for i in range(3)]
    # The stored bytes counting hands over (``streams.counting``), for some of the buckets:
    # the view writes those, or encodes the bucket where there are none (a rebuild).
    result.encoded = {k: b.encode() for i, (k, b) in enumerate(result.buckets.items())
                      if i % 2}
    return result


async def snapshot(redis: Redis) -> dict[bytes, object]:
    out: dict[bytes, object] = {}
    for key in sorted(await redis.keys("*")):
        kind = await redis.type(key)
        value: object = (await redis.zrange(key, 0, -1, withscores=True) if kind == b"zset"
                         else await redis.hgetall(key) if kind == b"hash"
                         else await redis.get(key))
        out[key] = (value, await redis.pexpiretime(key))
    return out


@pytest.mark.parametrize("chunk", [2, 500])
async def test_scripts_leave_what_the_commands_left(redis_url: str, chunk: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "_CHUNK", chunk)
    rng = random.Random(chunk)
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    scripted, plain = Redis.from_url(f"{base}/3"), Redis.from_url(f"{base}/4")
    for db in (scripted, plain):
        await db.flushdb()
    now_ms = to_ms(NOW)
    # The second batch trims what the first wrote more than the retention before; the
    # third is older than the second (the newest time must not move back).
    for start in (NOW - timedelta(days=9), NOW - timedelta(days=4), NOW - timedelta(days=8)):
        events = batch(rng, 120, start)
        result = counting(rng, events)
        for db, write_visits, write_stats, write_daily in (
                (scripted, views.visits, views.stats_view, views.daily_totals),
                (plain, reference_visits, reference_stats, reference_daily)):
            # Old stats buckets the removals delete.
            for cid, hour in result.removed:
                await db.set(redis_keys.stats_bucket(cid, hour), b"x")
            pipe = db.pipeline(transaction=False)
            write_stats(pipe, result, now_ms=now_ms)
            write_visits(pipe, events, retention_ms=RETENTION_MS)
            write_daily(pipe, daily_of(events), retention_ms=RETENTION_MS)
            await pipe.execute()
    want, got = await snapshot(plain), await snapshot(scripted)
    # The cases are there: hour buckets (not only the newest times), from the bytes counting
    # handed over and from the buckets encoded here.
    buckets = [key for key in want if key.startswith(b"vhc:stats:")
               and not key.endswith(b":last")]
    assert len(buckets) > 20
    assert sum(1 for v, _ in want.values() if isinstance(v, list) and v) > 20
    assert sum(1 for v, _ in want.values() if isinstance(v, dict) and len(v) > 3) > 5
    assert got.keys() == want.keys()
    for key, (value, expire_at) in want.items():
        assert got[key][0] == value, key
        # Relative expiries were set a few milliseconds apart in the two databases.
        got_at = got[key][1]
        assert isinstance(got_at, int) and isinstance(expire_at, int)
        assert (got_at < 0) == (expire_at < 0) and abs(got_at - expire_at) < 5_000, key
    for db in (scripted, plain):
        await db.flushdb()
        await db.aclose()

"""The exposure index keeps nothing past the retention in a key that keeps being written
(7/7 review, item 10: person keys were trimmed on 1 write in 16, by declaration id)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from redis.asyncio import Redis

from streams import views
from vhc_common import redis_keys
from vhc_common.schemas import DeclarationEvent, PersonRef

PERSON = "a" * 32
DAY_MS = 86_400_000


def event(declaration: int, at: datetime) -> DeclarationEvent:
    return DeclarationEvent(
        declaration_id=UUID(int=declaration), checkpoint_id="CP-TRIM", scanned_at=at,
        received_at=at, person=PersonRef(key=PERSON))


async def test_old_visits_are_trimmed_on_every_written_key(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    retention_ms = 2 * DAY_MS
    # Ids chosen so that none is a multiple of 16 (the old rule trimmed only those).
    for i, at in enumerate([start, start + timedelta(days=3)]):
        pipe = redis.pipeline(transaction=False)
        views.visits(pipe, [event(17 + i * 2, at)], retention_ms=retention_ms)
        await pipe.execute()
    person = await redis.zrange(redis_keys.visits_of_person(PERSON), 0, -1)
    checkpoint = await redis.zrange(redis_keys.visits_at("CP-TRIM"), 0, -1)
    assert [m.decode().split("|")[0] for m in person] == ["CP-TRIM"]
    assert len(person) == 1 and len(checkpoint) == 1
    assert await redis.pttl(redis_keys.visits_of_person(PERSON)) > 0
    await redis.aclose()

"""A batch of alerts stored by one script call per chunk leaves Redis as storing them one
at a time does: the same texts, the same sequence numbers in the index and the facets, the
same stream entries in order, the same answers (new, duplicate, repaired), across chunk
boundaries and with duplicates inside one call."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.factories import alert_event
from vhc_common import alert_view
from vhc_common.alert_view import EVENTS, INDEX, AlertView, facet_key
from vhc_common.schemas import AlertEvent


def alerts() -> list[AlertEvent]:
    made = [alert_event(key=f"a{i}", kind=("fever", "close_contact", "volume_surge")[i % 3],
                        checkpoint_id=f"CP-{i % 4}" if i % 5 else None,
                        ward_code="08749" if i % 2 else None) for i in range(11)]
    return [*made[:4], made[1], *made[4:], made[4], made[10]]  # duplicates, one in a chunk


async def state(client: Redis) -> dict[str, Any]:
    keys = sorted([k.decode() async for k in client.scan_iter(match="vhc:alert*")])
    out: dict[str, Any] = {}
    for key in keys:
        kind = (await client.type(key)).decode()
        if kind == "string":
            out[key] = (await client.get(key), await client.ttl(key) > 0)
        elif kind == "zset":
            out[key] = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            out[key] = [fields[b"alert"] for _id, fields in await client.xrange(key)]
    return out


@pytest.fixture
async def client(redis_url: str) -> Any:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def half_written(client: Redis, alert: AlertEvent) -> None:
    """Stored but never listed (the writer before the script; see test_agents)."""
    stored = alert.model_dump(mode="json") | {"status": "acknowledged", "history": []}
    await client.set(f"vhc:alert:{alert.alert_id}", json.dumps(stored), ex=60)


@pytest.mark.parametrize("chunk", [1, 3, 200])
async def test_a_batch_is_stored_as_one_at_a_time(client: Redis, monkeypatch: Any,
                                                  chunk: int) -> None:
    batch = alerts()
    view = AlertView(client, retention_s=3600)
    await half_written(client, batch[2])
    one_by_one = [await view.insert(a) for a in batch]
    expected = await state(client)
    assert one_by_one == [True, True, False, True, False, *[True] * 7, False, False]

    await client.flushdb()
    await half_written(client, batch[2])
    monkeypatch.setattr(alert_view, "INSERT_CHUNK", chunk)
    assert await view.insert_many(batch) == one_by_one
    got = await state(client)
    assert got == expected
    # Every alert listed and streamed once, in order; the text kept as stored (UTF-8).
    first = {a.alert_id: a for a in reversed(batch)}
    ids = list(dict.fromkeys(a.alert_id for a in batch))
    assert [m.decode() for m, _ in got[INDEX]] == ids
    assert [s for _, s in got[INDEX]] == list(range(1, len(ids) + 1))
    streamed = [json.loads(t)["alert_id"] for t in got[EVENTS]]
    assert streamed == ids
    assert "cảnh báo thử".encode() in got[f"vhc:alert:{ids[0]}"][0]
    for i in ids[3:]:  # new ones (not the one half written): the event, open, no history
        assert json.loads(got[f"vhc:alert:{i}"][0]) == first[i].model_dump(mode="json") | {
            "status": "open", "history": []}
    assert [m.decode() for m, _ in got[facet_key("ward_code", "08749")]] == \
        [i for i in ids if first[i].ward_code == "08749"]
    assert await view.insert_many(batch) == [False] * len(batch)  # a replay: nothing new
    assert len(await client.xrange(EVENTS)) == len(ids)


async def test_no_alerts_is_no_call(client: Redis) -> None:
    assert await AlertView(client, retention_s=60).insert_many([]) == []

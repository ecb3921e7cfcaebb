"""Status changes on a real Redis: stored by compare-and-set, published once, rolled back
when publishing fails (7/7 review, item 7: they were published inside a retry loop,
before Redis, so a failed write left Kafka a change the view never had)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from detectors.alerts import make_alert
from vhc_common.alert_view import EVENTS, AlertView
from vhc_common.schemas import AlertKind, AlertStatus, Evidence, Severity


async def _view_with_alert(redis_url: str) -> tuple[AlertView, Redis, str]:
    redis = Redis.from_url(redis_url)
    view = AlertView(redis, retention_s=3600)
    alert = make_alert(kind=AlertKind.FEVER, condition=(str(uuid.uuid4()),),
                       severity=Severity.WARNING, detected_at_ms=1_700_000_000_000,
                       vi="sốt", en="fever", evidence=Evidence(method="rule"),
                       checkpoint_id="CP-1")
    assert await view.insert(alert)
    return view, redis, alert.alert_id


async def test_a_failed_publish_leaves_the_view_unchanged(redis_url: str) -> None:
    view, redis, alert_id = await _view_with_alert(redis_url)
    events_before = await redis.xlen(EVENTS)

    async def broker_down(_: dict[str, Any]) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        await view.set_status(alert_id, AlertStatus.ACKNOWLEDGED, note="x", by="me",
                              publish=broker_down)
    stored = await view.get(alert_id)
    assert stored is not None and stored["status"] == "open" and stored["history"] == []
    assert await redis.xlen(EVENTS) == events_before
    await redis.aclose()


async def test_concurrent_changes_publish_each_change_once(redis_url: str) -> None:
    view, redis, alert_id = await _view_with_alert(redis_url)
    published: list[list[str]] = []

    async def publish(alert: dict[str, Any]) -> None:
        published.append([h["status"] for h in alert["history"]])
        await asyncio.sleep(0.01)

    await asyncio.gather(*(view.set_status(alert_id, AlertStatus.ACKNOWLEDGED, note=str(i),
                                           by="me", publish=publish) for i in range(5)))
    stored = await view.get(alert_id)
    assert stored is not None and len(stored["history"]) == 5
    assert len(published) == 5  # one record per change, none from a retry
    assert sorted(len(p) for p in published) == [1, 2, 3, 4, 5]
    await redis.aclose()

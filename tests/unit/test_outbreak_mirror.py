"""The worker's outbreak-area mirror forgets changes no accepted declaration can need
(7/7 review, item 8: the history was never pruned)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.app import ReadModels
from vhc_common.schemas import OutbreakAreasEvent

DAY_MS = 86_400_000
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def change(days_ago: float, areas: tuple[str, ...]) -> bytes:
    at = NOW - timedelta(days=days_ago)
    return OutbreakAreasEvent(areas=areas, effective_from=at,
                              updated_by="t").model_dump_json().encode()


def test_changes_superseded_before_the_retention_are_dropped() -> None:
    models = ReadModels(partitions=4, retention_ms=21 * DAY_MS,
                        wall_ms=lambda: int(NOW.timestamp() * 1000))
    for i in range(100):  # a change every 12 hours for 50 days
        models.apply_outbreak(None, change(50 - i / 2, (f"A{i}",)), 0)
    # The change in force 21 days ago (made exactly then) and every later one: 42 of 100.
    assert len(models.outbreak) == 42
    start = int((NOW - timedelta(days=21)).timestamp() * 1000)
    assert models.outbreak.areas_at(start) == frozenset({"A58"})
    assert models.outbreak.current() == frozenset({"A99"})

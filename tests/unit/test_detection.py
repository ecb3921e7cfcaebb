"""The stream-side detection adapter: batch size never changes the alerts; the clock."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from detectors.aberration import AberrationDetector
from detectors.cluster import ClusterDetector
from detectors.flags import FlagPolicy
from detectors.outbreak import OutbreakAreaHistory
from detectors.volume import VolumeDetector
from streams.clock import StreamClock, partition_key
from streams.detection import CheckpointInfo, Detection, DetectionResult
from tests.factories import T0, declaration_event
from vhc_common.partitioning import partition_for
from vhc_common.schemas import DeclarationEvent, PersonRef

OFFICE = CheckpointInfo(ward_code="08749", opening_hours=("07:00-17:00",), kind="office")


def detection(states: dict[str, str]) -> Detection:
    return Detection(states=states, policy=FlagPolicy(), cluster=ClusterDetector(),
                     aberration=AberrationDetector(), volume=VolumeDetector(), grace_s=300)


def traffic(seed: int) -> list[tuple[int, DeclarationEvent]]:
    """Ten days of two offices: steady hours, a silent afternoon, a burst of coughs."""
    rng = random.Random(seed)
    out = []
    start = T0.replace(hour=0) - timedelta(days=10)
    offset = 0
    for day in range(10):
        for hour in range(0, 10):  # 07:00-17:00 local is 00:00-10:00 UTC
            for cp in ("OFF-A", "OFF-B"):
                silent = day == 8 and cp == "OFF-B" and hour >= 5
                n = 0 if silent else 8
                for i in range(n):
                    burst = day == 9 and cp == "OFF-A" and hour == 3 and i < 5
                    at = start + timedelta(days=day, hours=hour, minutes=7 * i + rng.random())
                    offset += 1
                    out.append((offset, declaration_event(
                        checkpoint_id=cp, scanned_at=at,
                        symptoms=("cough",) if burst or rng.random() < 0.01 else (),
                        person=PersonRef(key=f"{rng.getrandbits(128):032x}"))))
    return out


def run(events: list[tuple[int, DeclarationEvent]], batch: int) -> list[str]:
    states: dict[str, str] = {}
    det = detection(states)
    alerts: list[str] = []
    now = 0
    for start in range(0, len(events), batch):
        result = DetectionResult()
        now = det.on_partition(events[start:start + batch], members={"OFF-A", "OFF-B"},
                               info=lambda _cid: OFFICE, outbreak=OutbreakAreaHistory(),
                               stream_time_ms=now, result=result)
        alerts += [a.alert_id for a in result.alerts]
    return alerts


@pytest.mark.parametrize("batch", [7, 500, 100_000])
def test_batch_size_never_changes_the_alerts(batch: int) -> None:
    events = traffic(seed=3)
    one_by_one = run(events, 1)
    kinds = {a.split("-")[0] for a in one_by_one}
    assert {"checkpoint_silent", "symptom_cluster", "symptomatic_declaration"} <= kinds
    assert run(events, batch) == one_by_one


def test_replayed_offsets_are_skipped() -> None:
    events = traffic(seed=4)[:200]
    states: dict[str, str] = {}
    det = detection(states)
    first, again = DetectionResult(), DetectionResult()
    now = det.on_partition(events, members=set(), info=lambda _c: OFFICE,
                           outbreak=OutbreakAreaHistory(), stream_time_ms=0, result=first)
    det.on_partition(events[50:], members=set(), info=lambda _c: OFFICE,
                     outbreak=OutbreakAreaHistory(), stream_time_ms=now, result=again)
    assert (first.applied, again.applied, again.replayed) == (200, 0, 150)
    assert again.alerts == [] and again.ward_records == []


class TestStreamClock:
    def test_partition_keys_land_on_their_partition(self) -> None:
        for p in range(8):
            assert partition_for(partition_key(p, 8, "clock").encode(), 8) == p

    def test_ticks_move_only_live_partitions(self) -> None:
        table: dict[str, str] = {}
        clock = StreamClock(table, partitions=4, live_lag_ms=600_000, tick_lag_ms=30_000)
        assert clock.tick(0, 10_000_000) == (0, 0)  # nothing seen yet: not live
        # Live: received 2 s after it was scanned.
        assert clock.observe(0, 1_000_000, 1_002_000) == (0, 1_000_000)
        assert clock.tick(0, 5_000_000) == (1_000_000, 4_970_000)
        # A replay on partition 1: scanned a week before it was received.
        week = 7 * 86_400_000
        clock.observe(1, 1_000_000, 1_000_000 + week)
        assert clock.tick(1, 2_000_000 + week) == (1_000_000, 1_000_000)
        # Ticks never move time back; events later than the tick do.
        assert clock.tick(0, 4_000_000) == (4_970_000, 4_970_000)
        assert clock.observe(0, 6_000_000, 6_000_500) == (4_970_000, 6_000_000)

    def test_members(self) -> None:
        clock = StreamClock({}, partitions=2)
        assert clock.add_members(1, {"B", "A"}) == {"A", "B"}
        assert clock.add_members(1, {"A", "C"}) == {"A", "B", "C"}
        assert clock.members(1) == {"A", "B", "C"} and clock.members(0) == set()

    def test_bad_lags_are_refused(self) -> None:
        with pytest.raises(ValueError, match="live_lag_ms=0"):
            StreamClock({}, partitions=1, live_lag_ms=0)

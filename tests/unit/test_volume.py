"""volume_surge and checkpoint_silent: same hour of day, opening hours, episodes."""

from __future__ import annotations

import math

import pytest

from detectors.counts import HOUR_MS
from detectors.flags import DeclarationFlags as F
from detectors.history import HourlyHistory
from detectors.poisson import poisson_cdf
from detectors.volume import VolumeDetector, VolumeParams, VolumeState, is_open
from vhc_common.schemas import AlertKind

D0 = 20_000
OFFICE = ("07:00-11:30", "13:30-17:00")  # local time, UTC+7


def utc_hour(day: int, local_hour: int) -> int:
    return (D0 + day) * 24 + local_hour - 7


def test_poisson_cdf_hand_computed() -> None:
    # P(X <= 0) = e^-6.9 = 0.001008; P(X <= 1) for lambda 2 = e^-2 (1 + 2) = 0.406006
    assert poisson_cdf(0, 6.9) == pytest.approx(math.exp(-6.9))
    assert poisson_cdf(1, 2.0) == pytest.approx(0.406006, abs=1e-6)
    assert poisson_cdf(-1, 2.0) == 0.0


@pytest.mark.parametrize(
    ("local_hour", "expected"),
    [(6, False), (7, True), (10, True), (11, False), (12, False), (13, False), (14, True),
     (16, True), (17, False)],
)
def test_opening_hours_in_local_time(local_hour: int, expected: bool) -> None:
    assert is_open(utc_hour(0, local_hour), OFFICE, 420) is expected
    assert is_open(utc_hour(0, local_hour), None, 420) is True


class Office:
    """An office open 07:00-11:30 and 13:30-17:00 with 10 declarations each open hour."""

    def __init__(self) -> None:
        self.det = VolumeDetector()
        self.state = VolumeState()
        self.history = HourlyHistory()

    def day(self, day: int, per_hour: dict[int, int] | None = None) -> list[object]:
        alerts: list[object] = []
        for local_hour in range(24):
            hour = utc_hour(day, local_hour)
            open_now = is_open(hour, OFFICE, 420)
            n = (per_hour or {}).get(local_hour, 10 if open_now else 0)
            for i in range(n):
                self.history.observe(hour * HOUR_MS + i * 1000, F.NONE)
            # Stream time moves on with the clock (ticks), events or not.
            now_ms = (hour + 1) * HOUR_MS + 6 * 60_000
            alerts += self.det.advance(self.state, self.history, now_ms=now_ms,
                                       checkpoint_id="CP", opening_hours=OFFICE)
        return alerts


def test_silence_while_open_is_one_alert_and_night_is_not_silence() -> None:
    office = Office()
    for day in range(8):
        assert office.day(day) == []  # nights are closed hours: never "silent"
    # Day 8: nobody declares from 09:00 on. Expected 10 an hour; P(X = 0) = e^-10 < 0.001.
    alerts = office.day(8, {7: 10, 8: 10} | {h: 0 for h in range(9, 24)})
    assert [a.kind for a in alerts] == [AlertKind.CHECKPOINT_SILENT]  # type: ignore[attr-defined]
    (alert,) = alerts
    assert alert.evidence.observed == 0 and alert.evidence.expected == 10.0  # type: ignore[attr-defined]
    assert alert.window_start.timestamp() * 1000 == utc_hour(8, 9) * HOUR_MS  # type: ignore[attr-defined]
    # Back to normal the next day, then silent again: a new episode, a new alert.
    assert office.day(9) == []
    again = office.day(10, {h: 0 for h in range(24)})
    assert len(again) == 1 and again[0].alert_id != alert.alert_id  # type: ignore[attr-defined]


def test_surge_needs_both_ratio_and_improbability() -> None:
    office = Office()
    for day in range(8):
        office.day(day)
    # 19 at 08:00 (expected 10): ratio 1.9 < 2 -> no alert; 30 at 10:00: ratio 3 and
    # P(X >= 30 | 10) ~ 7e-7 < 0.001 -> surge.
    alerts = office.day(8, {8: 19, 10: 30})
    assert [a.kind for a in alerts] == [AlertKind.VOLUME_SURGE]  # type: ignore[attr-defined]
    assert alerts[0].evidence.observed == 30  # type: ignore[attr-defined]


def test_silent_until_a_full_baseline() -> None:
    office = Office()
    for day in range(3):
        office.day(day)
    assert office.day(3, {h: 0 for h in range(24)}) == []


def test_low_traffic_checkpoints_are_not_called_silent() -> None:
    office = Office()
    for day in range(8):
        office.day(day, {h: 2 for h in range(24)})
    assert office.day(8, {h: 0 for h in range(24)}) == []  # expected 2 < 5


def test_state_round_trips_and_parameters_are_checked() -> None:
    state = VolumeState(5, None, 7)
    assert VolumeState.decode(state.encode()) == state
    with pytest.raises(ValueError, match="surge_min_ratio"):
        VolumeParams(surge_min_ratio=1.0)

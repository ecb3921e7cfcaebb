"""EARS C1/C2/C3 and the Poisson CUSUM: hand-computed values, then the detector."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.aberration import (
    AberrationDetector,
    AberrationParams,
    AberrationState,
    cusum_step,
    ears_c1,
    ears_c2,
    ears_c3,
)
from detectors.counts import HOUR_MS
from detectors.flags import DeclarationFlags as F
from detectors.history import HourlyHistory
from vhc_common.schemas import AlertKind, Severity


def test_c1_hand_computed() -> None:
    # baseline 2,4,3,5,1,3,3: mean 21/7 = 3; squared deviations 1+1+0+4+4+0+0 = 10;
    # sd = sqrt(10 / 6) = 1.290994; C1 = (9 - 3) / 1.290994 = 4.647580
    assert ears_c1([2, 4, 3, 5, 1, 3, 3, 9]) == pytest.approx(4.647580, abs=1e-6)


def test_c1_uses_only_the_last_eight_values() -> None:
    assert ears_c1([50, 2, 4, 3, 5, 1, 3, 3, 9]) == ears_c1([2, 4, 3, 5, 1, 3, 3, 9])


@pytest.mark.parametrize(("current", "expected"), [(3, 1.0), (5, 3.0), (6, 4.0)])
def test_flat_baseline_uses_min_sigma(current: int, expected: float) -> None:
    # sd of 2,2,2,2,2,2,2 is 0, floored at min_sigma = 1: C1 = current - 2
    assert ears_c1([2] * 7 + [current]) == expected


def test_min_sigma_is_a_parameter() -> None:
    assert ears_c1([2] * 7 + [3], min_sigma=0.5) == 2.0


def test_c2_skips_the_guard_band() -> None:
    # baseline 1..7: mean 4, sd = sqrt(28 / 6) = 2.160247; guard values 100, 100 ignored;
    # C2 = (10 - 4) / 2.160247 = 2.777460
    assert ears_c2([1, 2, 3, 4, 5, 6, 7, 100, 100, 10]) == pytest.approx(2.777460, abs=1e-6)


def test_c3_sums_c2_excess_over_one() -> None:
    # max(0, 2.5 - 1) + max(0, 0.5 - 1) + max(0, 3.2 - 1) = 1.5 + 0 + 2.2 = 3.7
    assert ears_c3([2.5, 0.5, 3.2]) == pytest.approx(3.7)


@pytest.mark.parametrize(("fn", "n"), [(ears_c1, 7), (ears_c2, 9)])
def test_short_series_are_refused(fn: object, n: int) -> None:
    with pytest.raises(ValueError, match=f"got {n}"):
        fn([1.0] * n)  # type: ignore[operator]


def test_cusum_hand_computed_and_reset() -> None:
    # m = 4, sqrt(m) = 2, k = 1.04, h = 2.26
    s, alarm = cusum_step(0.0, 4, 4)  # z = 0: S = max(0, -1.04) = 0
    assert (s, alarm) == (0.0, False)
    s, alarm = cusum_step(s, 7, 4)  # z = 1.5: S = 0.46
    assert s == pytest.approx(0.46) and not alarm
    s, alarm = cusum_step(s, 8, 4)  # z = 2: S = 0.46 + 2 - 1.04 = 1.42
    assert s == pytest.approx(1.42) and not alarm
    s, alarm = cusum_step(s, 9, 4)  # z = 2.5: S = 2.88 >= 2.26: alarm, reset
    assert (s, alarm) == (0.0, True)


@given(st.lists(st.integers(0, 20), min_size=8, max_size=8), st.integers(0, 20))
def test_c1_never_falls_when_the_current_count_rises(series: list[int], extra: int) -> None:
    raised = [*series[:-1], series[-1] + extra]
    assert ears_c1([float(v) for v in raised]) >= ears_c1([float(v) for v in series])


@given(st.floats(0.1, 50), st.integers(0, 100), st.floats(0, 10))
def test_cusum_is_never_negative(m: float, x: int, s_prev: float) -> None:
    s, _ = cusum_step(s_prev, x, m)
    assert s >= 0 and math.isfinite(s)


# ------------------------------------------------------------------------ the detector

D0 = 20_000  # a day index; hours are D0 * 24 + h


class Feed:
    """A checkpoint's traffic; stream time is its newest declaration."""

    def __init__(self) -> None:
        self.det = AberrationDetector()
        self.state = AberrationState()
        self.history = HourlyHistory()
        self.now_ms = 0

    def add(self, at_ms: int, flags: F) -> None:
        self.history.observe(at_ms, flags)
        self.now_ms = max(self.now_ms, at_ms)

    def advance(self) -> list[object]:
        return list(self.det.advance(self.state, self.history, now_ms=self.now_ms,
                                     checkpoint_id="CP"))

    def day(self, day: int, symptomatic_at: dict[int, int] | None = None) -> list[object]:
        """10 declarations in each hour 08..17; by default one symptomatic at 09 and 14."""
        symptomatic_at = symptomatic_at if symptomatic_at is not None else {9: 1, 14: 1}
        alerts: list[object] = []
        for hour in range(8, 18):
            base_ms = ((D0 + day) * 24 + hour) * HOUR_MS
            for i in range(10):
                self.add(base_ms + i * 60_000,
                         F.SYMPTOMATIC if i < symptomatic_at.get(hour, 0) else F.NONE)
            alerts += self.advance()
        return alerts


def test_silent_until_a_full_baseline_then_alarms_once_on_a_rise() -> None:
    feed = Feed()
    for day in range(5):
        assert feed.day(day) == []
    # A rise on day 5 is not judged: there is no full baseline yet (cold start).
    assert feed.day(5, {9: 1, 10: 8, 14: 1}) == []
    for day in range(6, 17):
        assert feed.day(day) == []
    alerts = feed.day(17, {9: 1, 10: 8, 14: 1})
    assert len(alerts) == 1  # one condition, one alert, though it alarms for hours
    (alert,) = alerts
    assert alert.kind is AlertKind.SYMPTOM_ABERRATION  # type: ignore[attr-defined]
    ev = alert.evidence  # type: ignore[attr-defined]
    # Evaluated when hour 10 closes (stream time past 11:05): the 24 h ending 11:00 hold
    # 1 (yesterday 14:00) + 1 (09:00) + 8 (10:00) = 10 symptomatic of 100; each baseline
    # day held 2 of 100, rescaled 2 * 100 / 100 = 2, sd 0 -> min_sigma 1:
    # C1 = (10 - 2) / 1 = 8, C2 = 8; CUSUM: m = max(0.02 * 10, 0.5) = 0.5,
    # S = (8 - 0.5) / sqrt(0.5) - 1.04 = 9.566 >= 2.26. C2 of the same hour 2 and 1 days
    # earlier was (2 - 2) / 1 = 0, so C3 = 0 + 0 + max(0, 8 - 1) = 7 >= 2.
    assert ev.observed == 10 and ev.expected == 2.0 and ev.threshold == 5.0
    assert ev.statistics["c1"] == 8.0 and ev.statistics["c2"] == 8.0
    assert ev.statistics["c3"] == 7.0
    assert ev.statistics["cusum_m"] == 0.5 and ev.statistics["hour_observed"] == 8.0
    assert ev.method == "EARS C1, EARS C2, EARS C3, CUSUM"
    assert alert.severity is Severity.CRITICAL  # type: ignore[attr-defined]
    assert alert.window_end.timestamp() * 1000 == ((D0 + 17) * 24 + 11) * HOUR_MS  # type: ignore[attr-defined]


def test_a_rise_in_traffic_alone_is_not_an_aberration() -> None:
    feed = Feed()
    for day in range(12):
        feed.day(day)
    # Day 12: three times the traffic with the same 2% share: nothing abnormal.
    alerts = []
    for hour in range(8, 18):
        base_ms = ((D0 + 12) * 24 + hour) * HOUR_MS
        for i in range(30):
            feed.add(base_ms + i * 20_000,
                     F.SYMPTOMATIC if hour in (9, 14) and i < 3 else F.NONE)
        alerts += feed.advance()
    assert alerts == []


def test_evaluation_waits_for_the_grace_period() -> None:
    feed = Feed()
    for day in range(12):
        feed.day(day)
    last = feed.state.evaluated_hour
    # Stream time 12:04 on day 12: hour 11 ends at 12:00 but grace is 5 minutes.
    feed.now_ms = ((D0 + 12) * 24 + 12) * HOUR_MS + 4 * 60_000
    feed.advance()
    assert feed.state.evaluated_hour == (D0 + 12) * 24 + 10 != last
    feed.now_ms += 60_000  # 12:05: hour 11 closes
    feed.advance()
    assert feed.state.evaluated_hour == (D0 + 12) * 24 + 11


def test_state_round_trips() -> None:
    feed = Feed()
    for day in range(11):
        feed.day(day)
    assert AberrationState.decode(feed.state.encode()) == feed.state
    assert HourlyHistory.decode(feed.history.encode()) == feed.history


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="min_sigma"):
        AberrationParams(min_sigma=0)


def test_a_new_rise_after_a_quiet_day_is_a_new_alert() -> None:
    feed = Feed()
    for day in range(17):
        feed.day(day)
    first = feed.day(17, {9: 1, 10: 8, 14: 1})
    # C3 keeps alarming while C2 of the spike day is within t-2..t (two more days).
    later = [a for day in range(18, 24) for a in feed.day(day)]
    second = feed.day(24, {9: 1, 10: 8, 14: 1})
    assert len(first) == 1 and later == [] and len(second) == 1
    assert first[0].alert_id != second[0].alert_id  # type: ignore[attr-defined]


def test_unjudged_hours_neither_extend_nor_end_an_episode() -> None:
    state = AberrationState(episode_hour=100, quiet_hours=23)
    history = HourlyHistory(hours={}, first_hour=90)  # no traffic: nothing can be judged
    AberrationDetector().advance(state, history, now_ms=200 * HOUR_MS, checkpoint_id="CP")
    assert (state.episode_hour, state.quiet_hours) == (100, 23)

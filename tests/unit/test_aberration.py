"""symptom_aberration: the textbook statistics by hand, the likelihood-ratio CUSUM, the
negative-binomial regression, then the detector (arming, episodes, evidence, re-judging)."""

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
    fit_negbin,
)
from detectors.base import Subject
from detectors.series import HourlySeries
from detectors.tails import poisson_sf
from vhc_common.schemas import AlertEvent, AlertKind, Severity
from vhc_common.timebase import HOUR_MS


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


# ------------------------------------------------------------------------ regression


def test_negbin_on_a_flat_poisson_baseline() -> None:
    # 14 days of 1000 declarations and 5 symptomatic: the share is 0.5 %, no trend, no
    # over-dispersion (phi floored at 1): the expected count today at 1000 is 5.
    y = [5.0] * 14
    n = [1000.0] * 14
    weekend = [d % 7 >= 5 for d in range(14)]
    fit = fit_negbin(y, n, weekend, y0=5, n0=1000.0, weekend0=False)
    assert fit is not None
    assert fit.expected == pytest.approx(5.0, rel=1e-6)
    assert fit.dispersion == 1.0 and not fit.trend
    assert fit.p_value > 0.3  # 5 of an expected 5 is ordinary


def test_negbin_follows_the_exposure_and_flags_a_rise() -> None:
    y = [4.0, 6.0, 5.0, 5.0, 4.0, 6.0, 5.0, 5.0, 4.0, 6.0]
    n = [1000.0] * 10
    fit = fit_negbin(y, n, [False] * 10, y0=20, n0=2000.0, weekend0=False)
    assert fit is not None
    assert fit.expected == pytest.approx(10.0, rel=1e-3)  # twice the traffic, same share
    # 20 against 10: the prediction's own uncertainty (10 periods of 5: var(log mu) =
    # 1/50, size = 10^2 / (10^2 / 50) = 50) widens the tail beyond a plain Poisson.
    assert fit.size == pytest.approx(50.0, rel=1e-3)
    assert poisson_sf(20, 10.0) < fit.p_value < 0.01


def test_negbin_drops_an_insignificant_trend_and_reweights_an_outlier() -> None:
    y = [5.0, 4.0, 6.0, 5.0, 30.0, 5.0, 4.0, 6.0, 5.0, 5.0, 6.0, 4.0]  # one outlier day
    fit = fit_negbin(y, [1000.0] * 12, [False] * 12, y0=6, n0=1000.0, weekend0=False)
    assert fit is not None and not fit.trend
    assert fit.expected < 7.5  # the outlier is down-weighted, not averaged in


def test_negbin_needs_a_baseline() -> None:
    assert fit_negbin([1.0] * 3, [100.0] * 3, [False] * 3, y0=1, n0=100.0,
                      weekend0=False) is None


# ------------------------------------------------------------------------ the detector

D0 = 20_000  # a day index; hours are D0 * 24 + h


class Feed:
    """A checkpoint's series, 10 declarations in each hour 08..17, judged hour by hour."""

    def __init__(self, params: AberrationParams | None = None) -> None:
        self.det = AberrationDetector(params)
        self.state = AberrationState()
        self.subject = Subject(series=HourlySeries(), checkpoint_id="CP", ward_code="08749",
                               place="CP")

    def hour(self, day: int, hour: int, total: int, sick: int) -> list[AlertEvent]:
        h = (D0 + day) * 24 + hour
        self.subject.series.put(h, total=total, symptomatic=sick)
        return self.det.on_hour_closed(self.state, self.subject, h,
                                       now_ms=(h + 1) * HOUR_MS + 300_000, late=False)

    def day(self, day: int, sick_at: dict[int, int] | None = None) -> list[AlertEvent]:
        """By default one symptomatic at 09 and one at 14."""
        sick_at = sick_at if sick_at is not None else {9: 1, 14: 1}
        alerts: list[AlertEvent] = []
        for hour in range(24):
            open_ = 8 <= hour < 18
            alerts += self.hour(day, hour, 10 if open_ else 0, sick_at.get(hour, 0))
        return alerts


def test_llr_cusum_hand_computed() -> None:
    # Share 2 / 100 with the prior: a = 1 % x 200 + 14 = 16, b = 99 % x 200 + 686 = 884
    # over the 7 days ending a day before; p = 16 / 900. An hour of 10 declarations
    # expects m = 10 p = 0.17778; an hour with 4 symptomatic adds
    # 4 ln 3 - 2 m = 4.0389, one with 0 subtracts 2 m.
    feed = Feed()
    for day in range(9):
        feed.day(day)
    p = 16 / 900
    h = (D0 + 9) * 24 + 10
    feed.subject.series.put(h, total=10, symptomatic=4)
    (result,) = feed.det.judge(feed.subject.series, h)
    assert result.statistics["share"] == pytest.approx(p, abs=1e-6)
    assert result.statistics["llr_cusum_s"] == pytest.approx(
        4 * math.log(3) - 2 * 10 * p, abs=1e-3)
    assert not result.alarm  # 4.04 < H = ln(1 / (0.2 % / 24)) = 9.393


def test_silent_until_a_full_baseline_then_one_alert_per_episode() -> None:
    feed = Feed()
    for day in range(8):  # the baseline (7 days) and its guard day
        assert feed.day(day, {9: 1, 10: 8, 14: 1} if day == 5 else None) == []
    alerts = feed.day(8)
    assert alerts == []
    alerts = feed.day(9, {9: 1, 10: 8, 11: 8, 14: 1})
    assert len(alerts) == 1
    (alert,) = alerts
    assert alert.kind is AlertKind.SYMPTOM_ABERRATION and alert.severity is Severity.WARNING
    # The evidence shows the value that crossed, not the 0 it was reset to, and the
    # expectation: no "expected ?" (defects of the old CUSUM).
    ev = alert.evidence
    assert ev.statistics["llr_cusum_s"] >= ev.threshold > 9
    assert ev.expected is not None and "?" not in alert.summary.en
    # Observed and expected are of the same 24 hours, the alert's window (the hour's own
    # expectation, 0.2, is in the statistics).
    assert alert.window_end is not None
    end_h = int(alert.window_end.timestamp()) // 3600 - 1
    total_24h, sym_24h = feed.subject.series.window(end_h - 23, end_h)
    assert ev.observed == sym_24h
    assert ev.expected == pytest.approx(ev.statistics["share"] * total_24h, rel=1e-3)
    assert ev.expected > 5 * ev.statistics["hour_expected"]
    # 8 in the 10:00 hour add 8 ln 3 - 2 m = 8.25 < 9.39; another 8 at 11:00 cross.
    assert alert.window_end is not None and alert.window_end.hour == 11 + 1
    # The rise goes on for hours: no second alert; a quiet day ends the episode.
    assert feed.day(10, {9: 4, 10: 8, 14: 1}) == []
    assert feed.day(11) == [] and feed.day(12) == []
    assert len(feed.day(13, {9: 1, 10: 9, 11: 9, 14: 1})) == 1


def test_the_baseline_is_the_seven_days_ending_a_day_before() -> None:
    # The old CUSUM's share skipped the 23 hours before the judged hour although its
    # docstring said "the last 7 days"; here the guard day is the documented choice.
    feed = Feed()
    for day in range(10):
        feed.day(day)
    h = (D0 + 9) * 24 + 12
    series = feed.subject.series
    first, last = h - 8 * 24 + 1, h - 24
    total, sym = series.window(first, last)
    a, b = feed.det.share(series, h)
    assert (a, b) == (pytest.approx(2 + sym), pytest.approx(198 + total - sym))


@pytest.mark.parametrize("method", ["llr_cusum", "negbin", "ears_c1", "ears_c2", "ears_c3",
                                    "cusum"])
def test_every_method_runs_and_sees_a_big_rise(method: str) -> None:
    feed = Feed(AberrationParams(methods=(method,), c1_threshold=3, c2_threshold=3,
                                 c3_threshold=2, cusum_h=2.26))
    for day in range(12):
        assert feed.day(day) == [], (method, day)
    alerts = feed.day(12, {9: 1, 10: 8, 11: 8, 12: 8, 14: 1})
    assert [a.kind for a in alerts] == [AlertKind.SYMPTOM_ABERRATION], method
    assert alerts[0].evidence.method == method


def test_judging_an_hour_again_with_late_data_is_a_pure_function() -> None:
    feed = Feed()
    for day in range(10):
        feed.day(day)
    h = (D0 + 10) * 24 + 10
    feed.subject.series.put(h, total=10, symptomatic=1)
    before = feed.det.judge(feed.subject.series, h)
    feed.subject.series.put(h, total=10, symptomatic=1)
    assert feed.det.judge(feed.subject.series, h) == before


def test_unknown_methods_and_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="ears_c9"):
        AberrationParams(methods=("ears_c9",))
    with pytest.raises(ValueError, match=r"got 1\.0"):
        AberrationParams(rho=1.0)
    with pytest.raises(ValueError, match="got 0"):
        AberrationParams(budget_per_100_days=0)

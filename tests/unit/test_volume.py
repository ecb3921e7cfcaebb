"""volume_surge and checkpoint_silent: like days, weekly rhythm, budgets, the numbers."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from detectors.base import Case, Subject
from detectors.schedule import HoursChange, HoursTimeline, parse_opening_hours
from detectors.series import HourlySeries
from detectors.volume import VolumeDetector, VolumeParams, VolumeState, nbinom_llr
from vhc_common.schemas import AlertEvent, AlertKind
from vhc_common.timebase import HOUR_MS, to_ms

# 2026-11-02 is a Monday; day d of the harness is 2026-11-02 + d (local, UTC+7).
MONDAY = to_ms(datetime(2026, 11, 2, tzinfo=UTC)) // HOUR_MS - 7


def hour_at(day: int, local_hour: int) -> int:
    return MONDAY + 24 * day + local_hour


Pattern = Callable[[int, int], float]  # (day, local hour) -> declarations that hour


def office(day: int, hour: int) -> float:
    """Monday to Friday, 07:00-17:00, 10 an hour; closed at weekends."""
    return 10.0 if day % 7 < 5 and 7 <= hour < 17 else 0.0


def market(day: int, hour: int) -> float:
    """Every day but Monday, 05:00-18:00, 30 an hour."""
    return 30.0 if day % 7 != 0 and 5 <= hour < 18 else 0.0


class Run:
    """Feeds a checkpoint's declarations in time order and moves stream time as the
    pipeline does: before each declaration (and at every quarter of an hour, as ticks
    would), hours that closed are judged and, at each new quarter, the ongoing gap."""

    GRACE_MS = 300_000

    def __init__(self, pattern: Pattern, params: VolumeParams | None = None,
                 hours: str | None = None, seed: int = 1) -> None:
        self.det = VolumeDetector(params)
        self.state = VolumeState()
        timeline = HoursTimeline([HoursChange(0, parse_opening_hours(hours))] if hours else [])
        self.subject = Subject(series=HourlySeries(), checkpoint_id="CP", ward_code="08749",
                               place="CP", hours=timeline)
        self.pattern = pattern
        self.rng = random.Random(seed)
        self.n = 0
        self.cursor: int | None = None
        self.step = -1

    def advance(self, now_ms: int) -> list[AlertEvent]:
        alerts: list[AlertEvent] = []
        closed = (now_ms - self.GRACE_MS) // HOUR_MS - 1
        if self.cursor is None:
            return alerts
        while self.cursor < closed:
            self.cursor += 1
            alerts += self.det.on_hour_closed(self.state, self.subject, self.cursor,
                                              now_ms=now_ms, late=False)
        step = (now_ms - self.GRACE_MS) // 900_000
        if step > self.step:
            self.step = step
            alerts += self.det.on_clock(self.state, self.subject, now_ms=now_ms)
        return alerts

    def hour(self, hour: int, count: int | None = None, *,
             poisson: bool = False) -> list[AlertEvent]:
        day, local = divmod(hour - MONDAY, 24)
        expected = self.pattern(day, local)
        n = count if count is not None else (
            _poisson(self.rng, expected) if poisson else round(expected))
        times = [hour * HOUR_MS + int((i + 0.5) * HOUR_MS / n) for i in range(n)]
        ticks = [hour * HOUR_MS + q * 900_000 for q in range(4)]
        alerts: list[AlertEvent] = []
        for at, is_tick in sorted([(t, False) for t in times] + [(t, True) for t in ticks]):
            alerts += self.advance(at)
            if is_tick:
                continue
            if self.cursor is None:
                self.cursor = hour - 1
            self.n += 1
            self.subject.series.observe(at, symptomatic=False, person_key=f"{self.n:032x}")
            alerts += self.det.on_declaration(self.state, self.subject,
                                              Case(str(self.n), "p", at, False))
        return alerts

    def days(self, first: int, last: int, **kw: bool) -> list[AlertEvent]:
        out: list[AlertEvent] = []
        for day in range(first, last):
            for h in range(24):
                out += self.hour(hour_at(day, h), **kw)
        return out


def _poisson(rng: random.Random, lam: float) -> int:
    k, p, limit = 0, rng.random(), math.exp(-lam)
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def kinds(alerts: list[AlertEvent]) -> list[str]:
    return [a.kind.value for a in alerts]


def test_like_days_are_days_of_the_same_type_that_were_open() -> None:
    run = Run(market)
    run.days(0, 15)
    series = run.subject.series
    # A Thursday hour (day 17) compares with weekdays; Monday (closed) is never a like day.
    like = run.det.like_days(series, hour_at(17, 9), run.state)
    assert like and all((17 - j) % 7 in {1, 2, 3, 4} for j in like)
    # A Saturday compares with Saturdays only.
    assert run.det.like_days(series, hour_at(19, 9), run.state) == [7, 14]


def test_an_office_closed_every_weekend_raises_nothing_on_its_second_weekend() -> None:
    run = Run(office)
    alerts = run.days(0, 21)  # three weekends; armed from day 7
    assert alerts == []


def test_monday_morning_after_the_weekend_is_no_surge() -> None:
    # The old 7-day same-hour baseline averaged the weekend's zeros in: "30 in the 10:00
    # hour, usually 14.1". Weekdays are compared with weekdays.
    run = Run(lambda d, h: 30.0 if office(d, h) else 0.0)
    alerts = run.days(0, 15, poisson=True)
    assert kinds(alerts) == []


def test_the_negative_binomial_llr_hand_computed() -> None:
    # log f(30 | 40) - log f(30 | 10) for size 20: 20 ln(30/60) + 30 ln(4 * 30/60)
    assert nbinom_llr(30, 10.0, 20.0, 4.0) == pytest.approx(
        20 * math.log(30 / 60) + 30 * math.log(2.0))
    # A huge size is the Poisson: 30 ln 4 - 10 * 3
    assert nbinom_llr(30, 10.0, 1e12, 4.0) == pytest.approx(30 * math.log(4) - 30)
    # Over-dispersion makes the same count weaker evidence.
    assert nbinom_llr(30, 10.0, 5.0, 4.0) < nbinom_llr(30, 10.0, 50.0, 4.0)


def test_a_threefold_surge_at_ten_an_hour_is_found_in_its_second_hour() -> None:
    run = Run(office)
    run.days(0, 14)
    alerts: list[AlertEvent] = []
    llr = []
    for h in range(7, 13):
        base = run.det.pooled_baseline(run.subject.series, hour_at(14, h), run.state)
        assert base is not None and base.mean == pytest.approx(10)
        llr.append(nbinom_llr(30 if h >= 8 else 10, base.mean, base.size, 4.0))
        alerts += run.hour(hour_at(14, h), 30 if 8 <= h < 12 else None)
    (surge,) = alerts
    assert surge.kind is AlertKind.VOLUME_SURGE
    # H = ln(24 * 100 / 0.2) = 9.393: one hour at 30 against 10 is not enough evidence
    # (about 8.9), two are; the alert names the hour that crossed.
    assert surge.evidence.threshold == pytest.approx(math.log(12_000), abs=1e-4)
    assert llr[1] < surge.evidence.threshold <= llr[1] + llr[2]
    assert surge.evidence.statistics["cusum"] == pytest.approx(llr[1] + llr[2], abs=1e-3)
    assert surge.window_start is not None and surge.window_start.hour == 9 - 7  # UTC
    assert surge.evidence.observed == 30 and surge.evidence.expected == pytest.approx(10)


def test_a_threefold_surge_at_a_busy_checkpoint_is_found_in_its_first_hour() -> None:
    run = Run(market)
    run.days(0, 15)
    alerts = [a for h in range(12) for a in run.hour(hour_at(15, h), 90 if h == 8 else None)]
    (surge,) = alerts
    assert surge.window_start is not None and surge.window_start.hour == 8 - 7


def test_a_surge_is_one_episode() -> None:
    run = Run(office)
    run.days(0, 14)
    alerts = [a for h in range(7, 17) for a in run.hour(hour_at(14, h), 40)]
    alerts += run.days(15, 16)
    assert kinds(alerts) == ["volume_surge"]


def test_a_busy_day_is_not_a_surge() -> None:
    # 1.6 times the usual traffic all day (a market day): the CUSUM for a fourfold rise
    # drifts down at any ratio under (4 - 1) / ln 4 = 2.16.
    run = Run(market)
    run.days(0, 14)
    alerts = [a for h in range(24) for a in run.hour(hour_at(15, h),
                                                      round(1.6 * market(15, h)))]
    assert alerts == []


def test_a_steady_800_an_hour_is_neither_silent_nor_unable_to_surge() -> None:
    # The old Poisson tail underflowed above 745: "800 declarations ... usually 800.0"
    # was called silent, and no surge could fire there.
    run = Run(lambda d, h: 800.0 if 8 <= h < 12 else 0.0)
    assert run.days(0, 14) == []
    run.hour(hour_at(14, 8), 2000)
    assert kinds(run.hour(hour_at(14, 9))) == ["volume_surge"]


def test_a_busy_checkpoint_that_stops_is_silent_within_the_hour() -> None:
    run = Run(market)
    run.days(0, 14)
    alerts: list[AlertEvent] = []
    for h in range(24):
        alerts += run.hour(hour_at(15, h), 0 if h >= 10 else None)
        if alerts:
            break
    (silent,) = alerts
    assert silent.kind is AlertKind.CHECKPOINT_SILENT
    assert silent.window_start is not None and silent.detected_at is not None
    waited_h = (silent.detected_at - silent.window_start).total_seconds() / 3600
    assert waited_h < 1.0
    # The numbers behind it: E expected declarations missed, P0 = (1 + E/size)^-size,
    # declarations a day x P0 <= budget (0.2 per 100 days).
    stats = silent.evidence.statistics
    assert stats["declarations_per_day"] * stats["p_zero"] <= 0.002
    assert silent.evidence.observed == 0


def test_a_silence_is_alerted_once_per_gap() -> None:
    run = Run(market)
    run.days(0, 14)
    alerts = [a for h in range(24) for a in run.hour(hour_at(15, h), 0 if h >= 10 else None)]
    alerts += run.days(16, 17)  # traffic comes back: the gap ends, nothing more
    assert kinds(alerts) == ["checkpoint_silent"]


def test_a_market_closed_on_mondays_learns_it() -> None:
    run = Run(market)
    assert run.days(0, 22) == []  # Mondays 7, 14 and 21 are quiet and never "silent"


def test_registered_hours_say_when_silence_counts() -> None:
    # The same office, hours registered: evenings are closed whatever history says.
    run = Run(office, hours="Mo-Fr 07:00-17:00")
    run.days(0, 14)
    alerts = [a for h in range(24) for a in run.hour(hour_at(14, h), 40 if h == 18 else None)]
    alerts += run.days(15, 16)
    assert alerts == []  # 18:00 is outside the hours: never judged


def test_cold_start_judges_nothing() -> None:
    run = Run(market)
    assert run.days(0, 7) == []
    alerts = [a for h in range(24) for a in run.hour(hour_at(7, h), 0 if h >= 9 else 200)]
    assert alerts == []  # day 7 is the first armed day only from its first hour on


def test_bad_parameters_name_the_value() -> None:
    with pytest.raises(ValueError, match=r"got 1\.0"):
        VolumeParams(surge_ratio=1.0)
    with pytest.raises(ValueError, match="day_types"):
        VolumeParams(day_types=((0, 1, 2, 3, 4), (5,)))
    with pytest.raises(ValueError, match="got 0"):
        VolumeParams(silence_budget_per_100_days=0)


def test_state_round_trips() -> None:
    run = Run(market)
    run.days(0, 15)
    assert VolumeState.from_json(run.state.to_json()) == run.state


class CheckedRun(Run):
    """A ``Run`` that checks ``clock_due`` at every look: before it, ``on_clock`` returns
    nothing and leaves the state as it was."""

    def __init__(self, pattern: Pattern) -> None:
        super().__init__(pattern)
        self.passed_over = 0
        self.looked = 0

    def advance(self, now_ms: int) -> list[AlertEvent]:
        due = self.det.clock_due(self.state, self.subject)
        if due is None or now_ms < due:
            before = self.state.to_json()
            assert self.det.on_clock(self.state, self.subject, now_ms=now_ms) == []
            assert self.state.to_json() == before
            self.passed_over += 1
        else:
            self.looked += 1
        return super().advance(now_ms)


def test_clock_due_says_when_the_silence_look_can_find_something() -> None:
    run = CheckedRun(market)
    alerts = run.days(0, 14)  # a cold start: nothing due before the series is armed
    alerts += [a for h in range(24) for a in run.hour(hour_at(15, h), 0 if h >= 10 else None)]
    alerts += run.days(16, 18)
    assert kinds(alerts) == ["checkpoint_silent"]
    assert run.passed_over > run.looked > 0  # the contract held on both sides
    # Once the gap is alerted, nothing is due until the next declaration.
    run.state.silent_since_ms = run.state.last_ms
    assert run.det.clock_due(run.state, run.subject) is None

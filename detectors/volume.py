"""``volume_surge`` and ``checkpoint_silent``: a checkpoint's traffic far above what it
normally sees at that hour, or stopped while it is normally busy.

Baseline: like hours of like days
---------------------------------
The expected count of an event-time hour ``h`` comes from the same local hour on *like
days* in the last ``lookback_days`` (21): days of the same type, by default Monday to
Friday, Saturday, Sunday. A Monday morning is compared with other weekday mornings, never
with a Sunday's zeros, and an office closed every weekend expects nothing on Saturday.
With ``S`` declarations over ``K`` like hours, the predictive distribution of the hour's
count is a negative binomial (a Poisson rate learned from ``K`` hours, Jeffreys prior,
times a day-level variation with squared coefficient ``phi``):

    mean = (S + 1/2) / K,   size = 1 / (1 / (S + 1/2) + phi)

``phi``, the extra-Poisson variation of whole days, is estimated from the like days' daily
totals and shrunk towards ``dispersion_prior`` (0.05, days varying by about 22 %), never
below ``dispersion_floor``. Hours that raised an alert (a surge, an alerted silence) are
left out of later baselines.

Surge (judged when an hour closes)
----------------------------------
A likelihood-ratio CUSUM for a ``surge_ratio``-fold (4x) rise, over the hours' predictive
negative binomials: ``S_h = max(0, S_{h-1} + log f(n_h | 4 m_h) - log f(n_h | m_h))``,
alarm at ``S_h >= H`` on an hour normally used (``m_h >= surge_min_expected``). Lorden's
bound gives at most one false alarm in ``e^H`` looks; a checkpoint is looked at 24 times a
day, so ``H = ln(24 / budget per day)``. The negative binomial (not a Poisson) keeps a
busy day, or an hour judged against few like days, from adding up to a surge: a day at
1.6 times the usual traffic drifts the sum down, a threefold surge at a busy checkpoint
alarms in its first hour, at ten an hour within two. The sum is recomputed over the last
``surge_memory_hours`` (48) hours, so judging an hour again gives the same answer.

Silence (judged every quarter of an hour)
-----------------------------------------
A silence is a *gap*: no declaration since the last one, at ``t0``. Its expected count
``E`` sums the like-hour means over the gap (``[t0, now - grace]``), skipping hours the
checkpoint is not open: outside registered opening hours, or, without registered hours,
hours that saw nobody in the like hours, or at the same hour of the week one (and two)
weeks before (a market closed on Mondays learns it). The chance of a gap at least that
empty, allowing for the uncertain rate and the day-level variation, is

    P0 = (1 + E / size)^(-size)

A gap can start after any declaration, so the looks are the ``N`` declarations of a day:
the silence is alerted when ``N * P0 <= budget`` (a union bound over gap starts, the
scan-statistic view of waiting times) and ``E >= silence_min_expected``. A busy checkpoint
is thus flagged soon after it stops (at 30 an hour in well under an hour), a quiet one
only after hours, and a checkpoint's nights and closed days are never "silent".

Budgets are ``*_budget_per_100_days`` false alarms per 100 checkpoint-days of ordinary
traffic (0.2 each by default; see ``detectors.base``).

Cold start: nothing is judged until ``min_history_days`` (7) of history lie before the
hour, and a day type with no like day yet (the first Saturday) is not judged.

One condition, one alert: a surge episode is a run of alarms at most six hours apart; a
silence is alerted once per gap (its id derives from the checkpoint and ``t0``); a
declaration ends it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Self

from mypy_extensions import mypyc_attr

from detectors.alerts import make_alert
from detectors.base import DEFAULT_BUDGET_PER_100_DAYS, Case, Subject
from detectors.series import QUARTER_MS, HourlySeries
from vhc_common.schemas import AlertEvent, AlertKind, Evidence, Severity
from vhc_common.timebase import (
    DAY_H,
    HOUR_MS,
    LOCAL_UTC_OFFSET_MIN,
    MINUTE_MS,
    local_day_of_hour,
    local_weekday,
)

__all__ = ["Baseline", "VolumeDetector", "VolumeParams", "VolumeState", "nbinom_llr"]

WEEKDAYS_SAT_SUN: tuple[tuple[int, ...], ...] = ((0, 1, 2, 3, 4), (5,), (6,))
#: A surge alarm this many hours or fewer from another belongs to the same episode.
SURGE_EPISODE_GAP_H = 6


@dataclass(frozen=True, slots=True)
class VolumeParams:
    lookback_days: int = 21
    min_history_days: int = 7
    day_types: tuple[tuple[int, ...], ...] = WEEKDAYS_SAT_SUN
    surge_budget_per_100_days: float = DEFAULT_BUDGET_PER_100_DAYS
    silence_budget_per_100_days: float = DEFAULT_BUDGET_PER_100_DAYS
    surge_ratio: float = 4.0
    surge_memory_hours: int = 48
    surge_min_expected: float = 1.0
    min_like_days: int = 3
    silence_min_expected: float = 3.0
    dispersion_prior: float = 0.05
    dispersion_floor: float = 0.01
    dispersion_prior_days: float = 5.0
    grace_s: int = 300
    utc_offset_min: int = LOCAL_UTC_OFFSET_MIN

    def __post_init__(self) -> None:
        if not 7 <= self.lookback_days <= 28:
            raise ValueError(f"lookback_days must be within 7..28, got {self.lookback_days}")
        if not 1 <= self.min_history_days <= self.lookback_days:
            raise ValueError(
                f"min_history_days must be within 1..lookback_days, got {self.min_history_days}")
        if sorted(d for t in self.day_types for d in t) != list(range(7)):
            raise ValueError(f"day_types must cover each weekday 0..6 once, got {self.day_types}")
        for name in ("surge_budget_per_100_days", "silence_budget_per_100_days"):
            if not 0 < getattr(self, name) <= 100:
                raise ValueError(f"{name} must be within (0, 100], got {getattr(self, name)}")
        if self.surge_ratio <= 1:
            raise ValueError(f"surge_ratio must be > 1, got {self.surge_ratio}")
        if not 1 <= self.surge_memory_hours <= 7 * DAY_H:
            raise ValueError(
                f"surge_memory_hours must be within 1..168, got {self.surge_memory_hours}")
        if self.silence_min_expected <= 0:
            raise ValueError(
                f"silence_min_expected must be > 0, got {self.silence_min_expected}")
        if not 0 <= self.dispersion_floor <= self.dispersion_prior <= 1:
            raise ValueError("need 0 <= dispersion_floor <= dispersion_prior <= 1, got "
                             f"{self.dispersion_floor}, {self.dispersion_prior}")
        if not 0 <= self.grace_s <= 86_400:
            raise ValueError(f"grace_s must be within 0..86400, got {self.grace_s}")


@dataclass(slots=True)
class VolumeState:
    last_ms: int | None = None
    #: the gap start (``last_ms``) of the silence alerted last
    silent_since_ms: int | None = None
    #: alerted silences ``[start_ms, end_ms]`` (end 0 while the gap lasts) and surge
    #: hours: left out of later baselines
    quiet_spans: list[list[int]] = field(default_factory=list)
    surge_hours: list[int] = field(default_factory=list)
    #: day-level dispersion cached for one local day: ``[day, phi]``
    phi_cache: list[float] = field(default_factory=list)
    #: ``[mean, size]`` of the hours judged recently (the surge CUSUM's input)
    expected: dict[int, list[float]] = field(default_factory=dict)
    #: declarations per local day (a day with none was closed: never a like day)
    day_totals: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> Any:
        return [self.last_ms, self.silent_since_ms, self.quiet_spans, self.surge_hours,
                self.phi_cache, {str(h): e for h, e in self.expected.items()},
                {str(d): n for d, n in self.day_totals.items()}]

    @classmethod
    def from_json(cls, raw: Any) -> Self:
        if not raw:
            return cls()
        last, silent, spans, surges, phi, expected, days = raw
        return cls(last, silent, [list(s) for s in spans], list(surges), list(phi),
                   {int(h): [float(e[0]), float(e[1])] for h, e in expected.items()},
                   {int(d): int(n) for d, n in days.items()})


@dataclass(frozen=True, slots=True)
class Baseline:
    """The like-hours baseline of one hour: ``S`` declarations over ``K`` like hours
    (``K`` may be fractional when other days' hours are borrowed)."""

    total: float
    hours: float
    phi: float

    @property
    def mean(self) -> float:
        """The point estimate ``S / K``."""
        return self.total / self.hours

    @property
    def predictive_mean(self) -> float:
        return (self.total + 0.5) / self.hours

    @property
    def size(self) -> float:
        return 1.0 / (1.0 / (self.total + 0.5) + self.phi)


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled (README "Compiled"); tests vary it
class VolumeDetector:
    """Pure ``volume_surge`` / ``checkpoint_silent`` detector (see module doc)."""

    def __init__(self, params: VolumeParams | None = None) -> None:
        self.params = params or VolumeParams()
        self._type_of = {d: i for i, group in enumerate(self.params.day_types) for d in group}
        # Lorden: a likelihood-ratio CUSUM alarms falsely at most once in e^H looks; 24 a day.
        self._surge_threshold = math.log(DAY_H * 100 / self.params.surge_budget_per_100_days)
        self._silence_budget = self.params.silence_budget_per_100_days / 100

    @staticmethod
    def initial_state() -> VolumeState:
        return VolumeState()

    # -------------------------------------------------------------- baselines

    def armed_from(self, series: HourlySeries) -> int | None:
        """The first hour judged: ``min_history_days`` of history before it (``None``: a
        series never seen)."""
        if series.first_hour is None:
            return None
        return series.first_hour + self.params.min_history_days * DAY_H

    def armed(self, series: HourlySeries, hour: int) -> bool:
        first = self.armed_from(series)
        return first is not None and hour >= first

    def like_days(self, series: HourlySeries, hour: int, state: VolumeState) -> list[int]:
        """How many days back (``j``) the like hours of ``hour`` are: the same local time on
        days of the same type, within history, leaving out hours that raised an alert."""
        if series.first_hour is None:
            return []
        offset = self.params.utc_offset_min
        kind = self._type_of[local_weekday(hour, offset)]
        day = local_day_of_hour(hour, offset)
        out = []
        for j in range(1, self.params.lookback_days + 1):
            h = hour - DAY_H * j
            if h < series.first_hour:
                break
            if (self._type_of[local_weekday(h, offset)] == kind
                    and state.day_totals.get(day - j, 0) > 0 and not _anomalous(state, h)):
                out.append(j)
        return out

    def like_hours(self, series: HourlySeries, hour: int, state: VolumeState) -> list[int]:
        return [hour - DAY_H * j for j in self.like_days(series, hour, state)]

    def baseline(self, series: HourlySeries, hour: int, state: VolumeState) -> Baseline | None:
        like = self.like_hours(series, hour, state)
        if not like:
            return None
        return Baseline(float(sum(series.total(h) for h in like)), float(len(like)),
                        self.dispersion(series, hour, state))

    def pooled_baseline(self, series: HourlySeries, hour: int,
                        state: VolumeState) -> Baseline | None:
        """The like-hours baseline, topped up to ``min_like_days`` with the same hour on days
        of other types, each scaled by the ratio of the day type's level to that day's
        total (a Saturday judged against one earlier Saturday borrows the shape of the
        weekdays, at the Saturday level)."""
        p = self.params
        same = self.like_days(series, hour, state)
        if not same:
            return None
        total = float(sum(series.total(hour - DAY_H * j) for j in same))
        weight = float(len(same))
        if len(same) < p.min_like_days:
            offset = p.utc_offset_min
            today = local_day_of_hour(hour, offset)
            day_total = {j: state.day_totals.get(today - j, 0)
                         for j in range(1, p.lookback_days + 1)}
            level = sum(day_total[j] for j in same) / len(same)
            others = [j for j in range(1, p.lookback_days + 1)
                      if j not in same and hour - DAY_H * j >= (series.first_hour or hour)
                      and day_total[j] > 0 and not _anomalous(state, hour - DAY_H * j)
                      and self._type_of[local_weekday(hour - DAY_H * j, offset)]
                      != self._type_of[local_weekday(hour, offset)]]
            if others and level > 0:
                w = (p.min_like_days - len(same)) / len(others)
                total += w * sum(series.total(hour - DAY_H * j) * level / day_total[j]
                                 for j in others)
                weight += w * len(others)
        return Baseline(total, weight, self.dispersion(series, hour, state))

    def dispersion(self, series: HourlySeries, hour: int, state: VolumeState) -> float:
        """Day-level extra-Poisson variation (squared coefficient of variation)."""
        p = self.params
        day = local_day_of_hour(hour, p.utc_offset_min)
        if state.phi_cache and state.phi_cache[0] == day:
            return state.phi_cache[1]
        groups: dict[int, list[int]] = {}
        first_full_day = (local_day_of_hour(series.first_hour, p.utc_offset_min) + 1
                          if series.first_hour is not None else day)
        for d in range(max(first_full_day, day - p.lookback_days), day):
            total = state.day_totals.get(d, 0)
            if total > 0:  # a closed day says nothing about variation
                weekday = (d + 3) % 7  # 1970-01-01 was a Thursday
                groups.setdefault(self._type_of[weekday], []).append(total)
        weight = estimate = 0.0
        for totals in groups.values():
            n = len(totals)
            mean = sum(totals) / n if n else 0.0
            if n < 2 or mean <= 0:
                continue
            var = sum((t - mean) ** 2 for t in totals) / (n - 1)
            estimate += (n - 1) * (var - mean) / mean**2
            weight += n - 1
        phi = ((estimate + p.dispersion_prior_days * p.dispersion_prior)
               / (weight + p.dispersion_prior_days))
        phi = max(p.dispersion_floor, phi)
        state.phi_cache = [float(day), phi]
        return phi

    def expected_per_day(self, series: HourlySeries, hour: int, state: VolumeState) -> float:
        """Declarations on a like day, on average (how many gaps a day can start)."""
        first = hour - hour % DAY_H
        return sum(b.mean for h in range(first, first + DAY_H)
                   if (b := self.baseline(series, h, state)) is not None)

    # -------------------------------------------------------------- the contract

    def on_declaration(self, state: VolumeState, subject: Subject, case: Case) -> list[AlertEvent]:
        day = local_day_of_hour(case.scanned_at_ms // HOUR_MS, self.params.utc_offset_min)
        state.day_totals[day] = state.day_totals.get(day, 0) + 1
        if state.last_ms is None or case.scanned_at_ms > state.last_ms:
            if state.quiet_spans and state.quiet_spans[-1][1] == 0:
                state.quiet_spans[-1][1] = case.scanned_at_ms  # the alerted gap ended
            state.last_ms = case.scanned_at_ms
        return []

    def on_hour_closed(self, state: VolumeState, subject: Subject, hour: int, *, now_ms: int,
                       late: bool) -> list[AlertEvent]:
        """Judge ``hour`` for a surge (see the module doc)."""
        p = self.params
        _prune(state, hour - p.lookback_days * DAY_H - DAY_H)
        series = subject.series
        if subject.checkpoint_id is None or not self.armed(series, hour):
            return []
        schedule = subject.schedule_at(hour * HOUR_MS)
        if schedule is not None and schedule.open_fraction(hour, p.utc_offset_min) == 0:
            state.expected.pop(hour, None)
            return []
        base = self.pooled_baseline(series, hour, state)
        if base is None:
            state.expected.pop(hour, None)
            return []
        state.expected[hour] = [round(base.mean, 4), round(base.size, 4)]
        for old in [h for h in state.expected if h < hour - p.surge_memory_hours]:
            del state.expected[old]
        peak, alarm = self._surge_cusum(series, state, hour)
        observed = series.total(hour)
        if not alarm or base.mean < p.surge_min_expected:
            return []
        # An episode goes on while alarms keep coming (the sum restarts at an alarm, so a
        # continuing surge alarms every hour or two).
        episode = any(0 < abs(h - hour) <= SURGE_EPISODE_GAP_H for h in state.surge_hours)
        if hour not in state.surge_hours:
            state.surge_hours.append(hour)
        if episode:
            return []
        return [self._surge_alert(subject, hour, now_ms, observed, base, peak)]

    def _surge_cusum(self, series: HourlySeries, state: VolumeState,
                     hour: int) -> tuple[float, bool]:
        """The likelihood-ratio CUSUM for a ``surge_ratio``-fold rise, recomputed over the
        last ``surge_memory_hours`` judged hours: ``(value at hour, alarm at hour)``."""
        p = self.params
        s = 0.0
        alarm = False
        for h in range(hour - p.surge_memory_hours + 1, hour + 1):
            expected = state.expected.get(h)
            if expected is None:
                continue
            mean, size = expected
            s = max(0.0, s + nbinom_llr(series.total(h), mean, size, p.surge_ratio))
            alarm = s >= self._surge_threshold
            if alarm and h < hour:
                s = 0.0
        return s, alarm

    def clock_due(self, state: VolumeState, subject: Subject) -> int | None:
        """When ``on_clock`` next looks at anything: once the gap since the last
        declaration (less the grace) has begun and reaches an armed hour. Before that
        its range of hours is empty, nothing is expected, and it returns ``[]``."""
        if subject.checkpoint_id is None or state.last_ms is None \
                or state.silent_since_ms == state.last_ms:
            return None  # nothing seen, or this gap was alerted: until the next declaration
        armed_from = self.armed_from(subject.series)
        if armed_from is None:
            return None
        return max(state.last_ms, armed_from * HOUR_MS) + 1 + self.params.grace_s * 1000

    def on_clock(self, state: VolumeState, subject: Subject, *, now_ms: int) -> list[AlertEvent]:
        """Judge the ongoing gap since the last declaration for a silence."""
        p = self.params
        if subject.checkpoint_id is None or state.last_ms is None:
            return []
        start, end = state.last_ms, now_ms - p.grace_s * 1000
        if end <= start or state.silent_since_ms == start:
            return []
        series = subject.series
        expected = weighted_hours = 0.0
        # Only armed hours: a long gap before arming cost a look per hour per sweep.
        armed_from = self.armed_from(series)
        if armed_from is None:
            return []  # never seen: nothing is expected
        for hour in range(max(start // HOUR_MS, armed_from), (end - 1) // HOUR_MS + 1):
            if not self._open(subject, state, hour):
                continue
            days = self.like_days(series, hour, state)
            if not days:
                continue
            for q in range(hour * 4, hour * 4 + 4):
                q0 = q * QUARTER_MS
                share = (min(end, q0 + QUARTER_MS) - max(start, q0)) / QUARTER_MS
                if share <= 0:
                    continue
                mean = sum(series.quarter(q - 4 * DAY_H * j) for j in days) / len(days)
                expected += share * mean
                weighted_hours += share * mean * len(days)
        if expected < p.silence_min_expected:
            return []
        phi = self.dispersion(series, end // HOUR_MS, state)
        size = 1.0 / (1.0 / (weighted_hours + 0.5) + phi)  # K_avg * E like-hour declarations
        p_zero = (1.0 + expected / size) ** (-size)
        per_day = self.expected_per_day(series, end // HOUR_MS, state)
        if p_zero * max(per_day, 1.0) > self._silence_budget:
            return []
        state.silent_since_ms = start
        state.quiet_spans.append([start, 0])
        return [self._silent_alert(subject, start, end, now_ms, expected, p_zero, per_day)]

    def _open(self, subject: Subject, state: VolumeState, hour: int) -> bool:
        """Whether the checkpoint is meant to be open (registered) or usually is (learned)."""
        p = self.params
        schedule = subject.schedule_at(hour * HOUR_MS)
        if schedule is not None:
            return schedule.open_fraction(hour, p.utc_offset_min) > 0
        series = subject.series
        weeks_back = [hour - 7 * DAY_H * w for w in (1, 2)]
        known = [h for h in weeks_back
                 if series.first_hour is not None and h >= series.first_hour
                 and not _anomalous(state, h)]
        # Open at this hour of the week in a recent week we know. A checkpoint not seen at
        # this hour of the week yet (its first Monday) is not judged: a market closed on
        # Mondays cannot be told from a silent one before it has been closed once.
        return any(series.total(h) > 0 for h in known)

    # -------------------------------------------------------------- alerts

    def _surge_alert(self, subject: Subject, hour: int, now_ms: int, observed: int,
                     base: Baseline, statistic: float) -> AlertEvent:
        cp = subject.checkpoint_id
        local = _local_clock(hour * HOUR_MS, self.params.utc_offset_min)
        return make_alert(
            kind=AlertKind.VOLUME_SURGE,
            condition=(cp, hour),
            severity=Severity.WARNING,
            detected_at_ms=now_ms,
            vi=f"Lượng khai báo tại {subject.place} tăng đột biến: {observed} trong giờ "
               f"{local} (thường khoảng {base.mean:.1f} vào giờ này những ngày tương tự)",
            en=f"Declarations at {subject.place} surged: {observed} in the {local} hour "
               f"(usually about {base.mean:.1f} at this hour on like days)",
            checkpoint_id=cp,
            ward_code=subject.ward_code,
            window_ms=(hour * HOUR_MS, (hour + 1) * HOUR_MS),
            evidence=Evidence(
                method=f"likelihood-ratio CUSUM for a {self.params.surge_ratio}-fold rise over "
                       "the same hour on like days (weekday/Sat/Sun), "
                       f"{self.params.lookback_days}-day look-back",
                observed=float(observed),
                expected=round(base.mean, 4),
                threshold=round(self._surge_threshold, 4),
                statistics={"cusum": round(statistic, 4), "like_days": round(base.hours, 2),
                            "dispersion": round(base.phi, 4)},
                # For the console's chart: this hour on each of the last 14 days, against
                # the like-days mean +- 2 standard deviations (overdispersed).
                series=tuple(float(subject.series.total(hour - 24 * d))
                             for d in range(13, -1, -1)),
                series_expected=(round(base.mean, 4),) * 14,
                series_threshold=(round(base.mean + 2 * math.sqrt(base.phi * base.mean), 4),)
                * 14,
                step_s=86_400,
            ),
        )

    def _silent_alert(self, subject: Subject, start: int, end: int, now_ms: int,
                      expected: float, p_zero: float, per_day: float) -> AlertEvent:
        cp = subject.checkpoint_id
        since = _local_clock(start, self.params.utc_offset_min)
        hours = (end - start) / HOUR_MS
        return make_alert(
            kind=AlertKind.CHECKPOINT_SILENT,
            condition=(cp, start),
            severity=Severity.WARNING,
            detected_at_ms=now_ms,
            vi=f"Điểm kiểm soát {subject.place} không có khai báo nào từ {since} "
               f"({hours:.1f} giờ) trong khi thường có khoảng {expected:.0f} lượt",
            en=f"Checkpoint {subject.place} went quiet: no declaration since {since} "
               f"({hours:.1f} h) where about {expected:.0f} are usual",
            checkpoint_id=cp,
            ward_code=subject.ward_code,
            window_ms=(start, end),
            evidence=Evidence(
                method="gap since the last declaration against like-hour means; alerted "
                       "when declarations per day x P(no declaration) <= budget",
                observed=0.0,
                expected=round(expected, 4),
                threshold=self._silence_budget,
                statistics={"p_zero": p_zero, "declarations_per_day": round(per_day, 2),
                            "gap_hours": round(hours, 3)},
            ),
        )


def nbinom_llr(n: int, mean: float, size: float, rho: float) -> float:
    """``log f(n | rho * mean) - log f(n | mean)`` for a negative binomial of ``size``:
    the evidence an hour's count gives for a ``rho``-fold rise (for large ``size``, the
    Poisson ``n ln rho - mean (rho - 1)``)."""
    if mean <= 0:
        return 0.0 if n == 0 else n * math.log(rho)
    if size > 1e9:
        return n * math.log(rho) - mean * (rho - 1)
    return (size * math.log((size + mean) / (size + rho * mean))
            + n * math.log(rho * (size + mean) / (size + rho * mean)))


def _anomalous(state: VolumeState, hour: int) -> bool:
    if hour in state.surge_hours:
        return True
    start, end = hour * HOUR_MS, (hour + 1) * HOUR_MS
    return any(a < end and (b == 0 or b > start) for a, b in state.quiet_spans)


def _prune(state: VolumeState, before_hour: int) -> None:
    state.surge_hours = [h for h in state.surge_hours if h >= before_hour]
    oldest_day = before_hour // DAY_H - 1
    for day in [d for d in state.day_totals if d < oldest_day]:
        del state.day_totals[day]
    state.quiet_spans = [s for s in state.quiet_spans
                         if s[1] == 0 or s[1] >= before_hour * HOUR_MS]


def _local_clock(epoch_ms: int, utc_offset_min: int) -> str:
    minutes = (epoch_ms // MINUTE_MS + utc_offset_min) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"

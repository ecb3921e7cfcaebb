"""``symptom_aberration``: EARS C1, C2, C3 and a Poisson CUSUM on symptomatic counts.

The statistics (CDC EARS; R ``surveillance::earsC`` and ``algo.cusum``)
-------------------------------------------------------------------------
For a series ``y`` and period ``t``, with ``mean``/``sd`` the sample mean and sample
standard deviation (n - 1) of a baseline, ``sd`` floored at ``min_sigma``:

* C1 = (y_t - mean(y_{t-7..t-1})) / sd(y_{t-7..t-1}); alarm when C1 > 3;
* C2 = (y_t - mean(y_{t-9..t-3})) / sd(y_{t-9..t-3}) (a 2-period guard band); alarm > 3;
* C3 = sum_{i=t-2..t} max(0, C2_i - 1); alarm when C3 >= 2. This follows CDC's definition;
  the ``surveillance`` package's C3 upper bound does not match its own documentation, so
  it is not used;
* Poisson CUSUM: z_t = (x_t - m_t) / sqrt(m_t), S_t = max(0, S_{t-1} + z_t - k); alarm
  when S_t >= h (k = 1.04, h = 2.26); S is reset to 0 after an alarm, else it drifts.

How they are applied to a checkpoint's stream (the choices)
------------------------------------------------------------
* **Periods that respect the time of day.** EARS periods are *days*: ``y_t`` is the
  symptomatic count of the 24 hours ending at an hour boundary, evaluated every hour; its
  baseline ``y_{t-j}`` is the same 24-hour span ``j`` days earlier. Each period covers every
  hour of the day once, so daily rhythms cancel, and an evaluation happens every hour.
  The CUSUM runs on hourly periods, with an expectation that follows the hour's traffic.
* **Adjusted for volume.** A checkpoint's symptomatic count rises when its traffic does;
  the share is the signal. Each baseline count is rescaled to the current volume,
  ``y'_j = s_j * n_t / n_j`` (``s`` symptomatic, ``n`` total), i.e. the count the baseline
  period's share would give at today's traffic. The CUSUM expects
  ``m_t = p * n_t``, with ``p`` the pooled share of the last 7 days.
* ``min_sigma`` (default 1.0, BioSense) keeps flat or sparse baselines from alarming on
  one case; the CUSUM uses ``m_t >= min_expected`` (default 0.5) for the same reason.

Cold start: no statistic until the checkpoint has existed for the whole baseline (10 days
for C1 and C2, 12 for C3, 7 for the CUSUM) and every baseline period saw traffic;
meanwhile the detector is silent.

Time: a period is evaluated once stream time (given by the caller: the watermark, see
``streams.clock``) minus ``grace_s`` has passed its end. Declarations for a period already
evaluated still count in later baselines; the caller counts them as ``late_after_close``.

One condition, one alert: an alarm starts an episode (one alert, id from the checkpoint
and the episode's first hour); it ends after ``quiet_hours_to_close`` (default 24: the EARS
period is a day) consecutive judged hours without an alarm. Hours no method could judge,
for want of traffic, neither extend nor end it.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field

from detectors.alerts import make_alert
from detectors.counts import HOUR_MS
from detectors.history import DAY_H, HourlyHistory
from vhc_common.schemas import AlertEvent, AlertKind, Evidence, Severity

__all__ = [
    "AberrationDetector",
    "AberrationParams",
    "AberrationState",
    "cusum_step",
    "ears_c1",
    "ears_c2",
    "ears_c3",
]


def _z(value: float, baseline: list[float], min_sigma: float) -> tuple[float, float, float]:
    mean = statistics.fmean(baseline)
    sd = max(statistics.stdev(baseline), min_sigma)
    return (value - mean) / sd, mean, sd


def ears_c1(series: list[float], *, min_sigma: float = 1.0) -> float:
    """C1 for the last value of ``series`` (needs 8 values: 7 baseline + current)."""
    if len(series) < 8:
        raise ValueError(f"C1 needs 8 values, got {len(series)}")
    return _z(series[-1], series[-8:-1], min_sigma)[0]


def ears_c2(series: list[float], *, min_sigma: float = 1.0) -> float:
    """C2 for the last value of ``series`` (needs 10 values: 7 baseline, 2 guard, current)."""
    if len(series) < 10:
        raise ValueError(f"C2 needs 10 values, got {len(series)}")
    return _z(series[-1], series[-10:-3], min_sigma)[0]


def ears_c3(c2_last_three: list[float]) -> float:
    """C3 from the C2 values of periods t-2, t-1, t."""
    if len(c2_last_three) != 3:
        raise ValueError(f"C3 needs 3 C2 values, got {len(c2_last_three)}")
    return sum(max(0.0, c - 1.0) for c in c2_last_three)


def cusum_step(s_prev: float, x: float, m: float, *, k: float = 1.04,
               h: float = 2.26) -> tuple[float, bool]:
    """One Poisson CUSUM step: ``(S_t, alarm)``; S is reset to 0 on an alarm."""
    if m <= 0:
        raise ValueError(f"m must be > 0, got {m}")
    s = max(0.0, s_prev + (x - m) / math.sqrt(m) - k)
    return (0.0, True) if s >= h else (s, False)


@dataclass(frozen=True, slots=True)
class AberrationParams:
    min_sigma: float = 1.0
    c1_threshold: float = 3.0
    c2_threshold: float = 3.0
    c3_threshold: float = 2.0
    cusum_k: float = 1.04
    cusum_h: float = 2.26
    min_expected: float = 0.5
    grace_s: int = 300
    quiet_hours_to_close: int = 24

    def __post_init__(self) -> None:
        if self.quiet_hours_to_close < 1:
            raise ValueError(
                f"quiet_hours_to_close must be >= 1, got {self.quiet_hours_to_close}")
        if self.min_sigma <= 0:
            raise ValueError(f"min_sigma must be > 0, got {self.min_sigma}")
        if self.min_expected <= 0:
            raise ValueError(f"min_expected must be > 0, got {self.min_expected}")
        if not 0 <= self.grace_s <= 86_400:
            raise ValueError(f"grace_s must be within 0..86400, got {self.grace_s}")


@dataclass(slots=True)
class AberrationState:
    """The CUSUM sum, recent C2 values, the episode in progress and the last hour
    evaluated (the hourly counts live in ``HourlyHistory``)."""

    evaluated_hour: int | None = None
    cusum: float = 0.0
    c2_history: dict[int, float] = field(default_factory=dict)
    episode_hour: int | None = None
    quiet_hours: int = 0

    def encode(self) -> str:
        return json.dumps({"e": self.evaluated_hour, "s": self.cusum,
                           "c2": {str(k): v for k, v in self.c2_history.items()},
                           "ep": self.episode_hour, "q": self.quiet_hours})

    @classmethod
    def decode(cls, data: str | None) -> AberrationState:
        if not data:
            return cls()
        raw = json.loads(data)
        return cls(evaluated_hour=raw["e"], cusum=float(raw["s"]),
                   c2_history={int(k): float(v) for k, v in raw["c2"].items()},
                   episode_hour=raw["ep"], quiet_hours=int(raw["q"]))


BASELINE_DAYS_C2 = 9
#: Hours of history the baselines need: C2's 9 days back from a trailing day, plus a day.
KEEP_HOURS = (BASELINE_DAYS_C2 + 2) * DAY_H


class AberrationDetector:
    """Pure ``symptom_aberration`` detector for one checkpoint (see module doc)."""

    def __init__(self, params: AberrationParams | None = None) -> None:
        self.params = params or AberrationParams()

    @staticmethod
    def initial_state() -> AberrationState:
        return AberrationState()

    def closed_through(self, now_ms: int) -> int:
        """The last hour that stream time ``now_ms`` has closed."""
        return (now_ms - self.params.grace_s * 1000) // HOUR_MS - 1

    def advance(self, state: AberrationState, history: HourlyHistory, *, now_ms: int,
                checkpoint_id: str | None, ward_code: str | None = None,
                place: str | None = None) -> list[AlertEvent]:
        """Evaluate every hour that stream time ``now_ms`` has closed since the last call.

        The series is a checkpoint's (``checkpoint_id``) or a ward's (``checkpoint_id``
        ``None``, ``ward_code`` set); ``place`` names it in the summary.
        """
        if checkpoint_id is None and ward_code is None:
            raise ValueError("a checkpoint_id or a ward_code is needed")
        if history.first_hour is None:
            return []
        closed_through = self.closed_through(now_ms)
        start = (history.first_hour if state.evaluated_hour is None
                 else state.evaluated_hour + 1)
        alerts = []
        for hour in range(max(start, closed_through - KEEP_HOURS), closed_through + 1):
            alert = self._evaluate(state, history, hour, now_ms, checkpoint_id, ward_code,
                                   place or checkpoint_id or f"phường/xã {ward_code}")
            if alert is not None:
                alerts.append(alert)
            state.evaluated_hour = hour
        for old in [h for h in state.c2_history if h < closed_through - 3 * DAY_H]:
            del state.c2_history[old]
        return alerts

    def _evaluate(self, state: AberrationState, history: HourlyHistory, hour: int,
                  now_ms: int, checkpoint_id: str | None, ward_code: str | None,
                  place: str) -> AlertEvent | None:
        p = self.params
        assert history.first_hour is not None
        age_h = hour - history.first_hour + 1
        n_t, s_t = history.day_sum(hour)
        stats: dict[str, float] = {}
        alarms: list[str] = []
        judged = False
        expected: float | None = None
        threshold: float | None = None
        # EARS on trailing-day periods, baselines shifted by whole days.
        days = [history.day_sum(hour - DAY_H * j) for j in range(1, BASELINE_DAYS_C2 + 1)]
        if n_t > 0 and age_h >= (BASELINE_DAYS_C2 + 1) * DAY_H and all(n for n, _ in days):
            rescaled = [s * n_t / n for n, s in days]  # y'_j, j = 1..9
            c1, mean1, sd1 = _z(s_t, rescaled[:7], p.min_sigma)
            c2, _, _ = _z(s_t, rescaled[2:9], p.min_sigma)
            state.c2_history[hour] = c2
            judged = True
            stats |= {"c1": round(c1, 4), "c2": round(c2, 4)}
            expected, threshold = mean1, mean1 + p.c1_threshold * sd1
            if c1 > p.c1_threshold:
                alarms.append("EARS C1")
            if c2 > p.c2_threshold:
                alarms.append("EARS C2")
            previous = [state.c2_history.get(hour - DAY_H * i) for i in (2, 1)]
            if all(v is not None for v in previous):
                c3 = ears_c3([*(v for v in previous if v is not None), c2])
                stats["c3"] = round(c3, 4)
                if c3 >= p.c3_threshold:
                    alarms.append("EARS C3")
        # Poisson CUSUM on hourly counts, expectation from the pooled 7-day share.
        bucket = history.at(hour)
        week = [history.day_sum(hour - DAY_H * j) for j in range(1, 8)]
        week_total = sum(n for n, _ in week)
        if bucket[0] > 0 and age_h >= 8 * DAY_H and week_total > 0:
            m = max(sum(s for _, s in week) / week_total * bucket[0], p.min_expected)
            state.cusum, alarm = cusum_step(state.cusum, bucket[1], m, k=p.cusum_k,
                                            h=p.cusum_h)
            judged = True
            stats |= {"cusum_s": round(state.cusum, 4), "cusum_m": round(m, 4),
                      "hour_observed": float(bucket[1])}
            if alarm:
                alarms.append("CUSUM")
        if not alarms:
            if judged and state.episode_hour is not None:
                state.quiet_hours += 1
                if state.quiet_hours >= p.quiet_hours_to_close:
                    state.episode_hour = None
            return None
        state.quiet_hours = 0
        if state.episode_hour is not None:
            return None  # the same condition is alerted already
        state.episode_hour = hour
        end_ms = (hour + 1) * HOUR_MS
        method = ", ".join(alarms)
        exp_txt = f"{expected:.2f}" if expected is not None else "?"
        return make_alert(
            kind=AlertKind.SYMPTOM_ABERRATION,
            condition=(checkpoint_id or f"ward:{ward_code}", hour),
            severity=Severity.CRITICAL if len(alarms) >= 2 else Severity.WARNING,
            detected_at_ms=now_ms,
            vi=f"Số người có triệu chứng tại {place} tăng bất thường: {s_t} trong "
               f"24 giờ (kỳ vọng {exp_txt}), phát hiện bởi {method}",
            en=f"Abnormal rise of symptomatic declarants at {place}: {s_t} in 24 h "
               f"(expected {exp_txt}), found by {method}",
            checkpoint_id=checkpoint_id,
            ward_code=ward_code,
            window_ms=(end_ms - DAY_H * HOUR_MS, end_ms),
            evidence=Evidence(method=method, observed=float(s_t), expected=expected,
                              threshold=threshold, statistics=stats),
        )

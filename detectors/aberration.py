"""``symptom_aberration``: the share of symptomatic declarants at a checkpoint or in a ward
rises beyond what its own history explains.

The series, and why the share
-----------------------------
Each closed event-time hour ``h`` has ``n_h`` declarations and ``s_h`` new symptomatic
declarants (``detectors.series``). A checkpoint's symptomatic count rises when its traffic
does; the *share* is the signal (BioSense: adjusting for total visits improves sensitivity
at a fixed alert rate). Every method below therefore expects ``s`` in proportion to ``n``,
which also makes hours of the day and days of the week comparable without modelling them.

The baseline share ``p`` comes from the ``baseline_days`` (7) days that end one day before
the judged hour (a one-day guard band, so an outbreak does not explain itself), with a
Beta prior worth ``prior_weight`` declarations at ``prior_share``.

Methods (each judged when an hour closes; all pure functions of the series)
--------------------------------------------------------------------------
* ``llr_cusum``, the default: a likelihood-ratio CUSUM for a ``rho``-fold rise of the
  share (Lucas' Poisson CUSUM with a time-varying expectation ``m_h = p n_h``):
  ``S_h = max(0, S_{h-1} + s_h ln(rho) - m_h (rho - 1))``, alarm at ``S_h >= H``. For the
  CUSUM of log-likelihood ratios, Lorden's bound gives an in-control run of at least
  ``e^H`` looks, so ``H = ln(24 / budget per day)`` keeps the false alarms of hourly
  looks within budget. It accumulates evidence hour by hour: a thin ward-wide rise is
  found after a few hours, a sharp one at the first hour.
* ``negbin``, the method of the field for counts with trend, day-of-week effects and
  over-dispersion (Farrington Flexible with Noufaily's improvements; ESSENCE's regression
  with day-of-week terms): a quasi-Poisson log-linear fit of the symptomatic count of
  trailing 24-hour periods on the same periods of earlier days, with ``log n`` as offset,
  a weekend term when both kinds of day are present, a trend when ten or more days are
  (kept only if significant at 5 % and not extrapolating above the baseline's maximum),
  Farrington's down-weighting of baseline periods with Anscombe residuals above 2.58, and
  Noufaily's negative-binomial upper quantile (dispersion plus the prediction's own
  variance). Looked at every hour, at a per-look level ``budget / 24``; no alarm under
  ``min_cases`` cases.
* ``ears_c1``, ``ears_c2``, ``ears_c3`` (CDC EARS, R ``surveillance::earsC``): trailing
  24-hour periods evaluated hourly, baselines shifted by whole days (the time of day
  cancels), rescaled to the current volume (``y'_j = s_j n_t / n_j``), sample sd floored
  at ``min_sigma`` (1.0). C1 = (y - mean_{t-7..t-1}) / sd, C2 the same with a two-period
  guard band, C3 = sum over the last three C2 of max(0, C2 - 1). CDC's thresholds (3, 3,
  2) are made for one look a day and alarm on most small series when looked at hourly;
  the defaults here (``c1_threshold`` ...) come from a simulated calibration at the
  default budget (``python -m simulator calibrate``; see the README).
* ``cusum``, the standardized Poisson CUSUM of ``surveillance::algo.cusum``:
  ``z_h = (s_h - m_h) / sqrt(m_h)``, ``S_h = max(0, S_{h-1} + z_h - k)``, ``k = 1.04``,
  with ``m_h >= min_expected``; its decision interval ``cusum_h`` is calibrated like EARS
  (2.26 is made for one look a day).

The CUSUMs are recomputed over the last ``cusum_memory_hours`` (72) from zero at each
judgement, resetting at an alarm, so that judging an hour again (late declarations) or
replaying gives the same answer as live; with a negative drift on ordinary traffic the
sum is back at zero long before 72 hours.

Cold start: nothing until ``baseline_days + 1`` days of history lie before the hour.

One condition, one alert: an alarm starts an episode (one alert, id from the series and
the episode's first hour); it ends after ``quiet_hours_to_close`` (24) judged hours
without an alarm.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from detectors.alerts import make_alert
from detectors.base import DEFAULT_BUDGET_PER_100_DAYS, Case, Subject
from detectors.series import HourlySeries
from detectors.tails import nbinom_sf, poisson_sf
from vhc_common.schemas import AlertEvent, AlertKind, Evidence, Severity
from vhc_common.timebase import DAY_H, HOUR_MS, LOCAL_UTC_OFFSET_MIN, local_weekday

__all__ = [
    "METHODS",
    "AberrationDetector",
    "AberrationParams",
    "AberrationState",
    "MethodResult",
    "cusum_step",
    "ears_c1",
    "ears_c2",
    "ears_c3",
    "fit_negbin",
]

METHODS = ("llr_cusum", "negbin", "ears_c1", "ears_c2", "ears_c3", "cusum")


# ------------------------------------------------------------------ textbook statistics


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
    """One standardized Poisson CUSUM step: ``(S_t, alarm)``; S is reset to 0 on an alarm
    (the value that crossed ``h`` is what the caller reports)."""
    if m <= 0:
        raise ValueError(f"m must be > 0, got {m}")
    s = max(0.0, s_prev + (x - m) / math.sqrt(m) - k)
    return (0.0, True) if s >= h else (s, False)


@dataclass(frozen=True, slots=True)
class NegBinFit:
    """A fitted baseline: the expected count of the current period, its negative-binomial
    predictive ``size`` (``inf``: Poisson) and the upper tail of the observed count."""

    expected: float
    size: float
    dispersion: float
    p_value: float
    periods: int
    trend: bool
    weekend: bool


def fit_negbin(y: list[float], n: list[float], weekend: list[bool], *, y0: int, n0: float,
               weekend0: bool) -> NegBinFit | None:
    """Farrington-Noufaily style fit of counts ``y`` with exposures ``n`` (see module doc);
    ``None`` without enough usable baseline."""
    keep = [i for i in range(len(y)) if n[i] > 0]
    if len(keep) < 5 or n0 <= 0:
        return None
    yv = np.array([y[i] for i in keep], dtype=float)
    off = np.log(np.array([n[i] for i in keep], dtype=float))
    wk = np.array([1.0 if weekend[i] else 0.0 for i in keep])
    # periods are numbered back in time: trend regressor = -(days ago)
    tr = -np.array([float(i + 1) for i in keep])
    use_weekend = bool(2 <= wk.sum() <= len(keep) - 2)
    use_trend = len(keep) >= 10
    for attempt in (True, False):
        cols = [np.ones_like(yv)]
        x0 = [1.0]
        if use_weekend:
            cols.append(wk)
            x0.append(1.0 if weekend0 else 0.0)
        if use_trend and attempt:
            cols.append(tr)
            x0.append(0.0)
        fitted = _irls(np.column_stack(cols), yv, off)
        if fitted is None:
            return None
        beta, cov, phi = fitted
        xnew = np.array(x0)
        eta0 = float(xnew @ beta) + math.log(n0)
        mu0 = math.exp(eta0)
        if use_trend and attempt:
            se = math.sqrt(max(cov[-1, -1], 0.0))
            z = beta[-1] / se if se > 0 else 0.0
            rate_max = float(np.max(yv / np.exp(off))) * n0
            if abs(z) < 1.96 or mu0 > rate_max:
                continue  # Farrington: drop an insignificant or extrapolating trend
        var_eta = float(xnew @ cov @ xnew)
        variance = phi * mu0 + mu0**2 * var_eta
        size = mu0**2 / (variance - mu0) if variance > mu0 * (1 + 1e-9) else math.inf
        p_value = (nbinom_sf(y0, mu0, size) if math.isfinite(size) else poisson_sf(y0, mu0))
        return NegBinFit(mu0, size, phi, p_value, len(keep), use_trend and attempt,
                         use_weekend)
    return None  # pragma: no cover - the loop always returns on its second pass


def _irls(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], offset: np.ndarray[Any, Any],
          ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], float] | None:
    """Quasi-Poisson log-linear fit by iteratively reweighted least squares, with
    Farrington's re-weighting of outlying periods; ``(beta, cov, phi)``."""
    n_obs, n_par = x.shape
    if n_obs <= n_par:
        return None
    prior_w = np.ones(n_obs)
    rate = (y.sum() + 0.5) / np.exp(offset).sum()
    beta = np.zeros(n_par)
    beta[0] = math.log(rate)
    phi = 1.0
    for _round in range(2):  # fit, re-weight outliers, fit again
        for _ in range(25):
            eta = x @ beta + offset
            mu = np.exp(np.clip(eta, -30, 30))
            w = prior_w * mu
            z = eta - offset + (y - mu) / mu
            xtw = x.T * w
            try:
                new = np.linalg.solve(xtw @ x + 1e-9 * np.eye(n_par), xtw @ z)
            except np.linalg.LinAlgError:
                return None
            if np.max(np.abs(new - beta)) < 1e-8:
                beta = new
                break
            beta = new
        mu = np.exp(np.clip(x @ beta + offset, -30, 30))
        dof = max(1, n_obs - n_par)
        phi = max(1.0, float(np.sum(prior_w * (y - mu) ** 2 / mu) / dof))
        anscombe = 1.5 * (np.cbrt(y) ** 2 - np.cbrt(mu) ** 2) / (mu ** (1 / 6) * math.sqrt(phi))
        prior_w = np.where(anscombe > 2.58, 1.0 / np.maximum(anscombe, 1e-9) ** 2, 1.0)
    w = prior_w * mu
    try:
        cov = phi * np.linalg.inv((x.T * w) @ x + 1e-9 * np.eye(n_par))
    except np.linalg.LinAlgError:
        return None
    return beta, cov, phi


# ------------------------------------------------------------------ the detector


@dataclass(frozen=True, slots=True)
class AberrationParams:
    methods: tuple[str, ...] = ("llr_cusum",)
    budget_per_100_days: float = DEFAULT_BUDGET_PER_100_DAYS
    baseline_days: int = 7
    prior_share: float = 0.01
    prior_weight: float = 200.0
    rho: float = 3.0
    cusum_memory_hours: int = 72
    min_cases: int = 3
    min_sigma: float = 1.0
    c1_threshold: float = 5.0
    c2_threshold: float = 5.0
    c3_threshold: float = 6.0
    cusum_k: float = 1.04
    cusum_h: float = 8.0
    min_expected: float = 0.5
    quiet_hours_to_close: int = 24
    utc_offset_min: int = LOCAL_UTC_OFFSET_MIN

    def __post_init__(self) -> None:
        unknown = set(self.methods) - set(METHODS)
        if not self.methods or unknown:
            raise ValueError(f"methods must be a non-empty subset of {METHODS}, got "
                             f"{self.methods}")
        if not 0 < self.budget_per_100_days <= 100:
            raise ValueError(
                f"budget_per_100_days must be within (0, 100], got {self.budget_per_100_days}")
        if not 3 <= self.baseline_days <= 19:
            raise ValueError(f"baseline_days must be within 3..19, got {self.baseline_days}")
        if self.rho <= 1:
            raise ValueError(f"rho must be > 1, got {self.rho}")
        if not 24 <= self.cusum_memory_hours <= 21 * DAY_H:
            raise ValueError(
                f"cusum_memory_hours must be within 24..504, got {self.cusum_memory_hours}")
        if self.quiet_hours_to_close < 1:
            raise ValueError(
                f"quiet_hours_to_close must be >= 1, got {self.quiet_hours_to_close}")
        if self.min_sigma <= 0:
            raise ValueError(f"min_sigma must be > 0, got {self.min_sigma}")
        if self.min_expected <= 0:
            raise ValueError(f"min_expected must be > 0, got {self.min_expected}")

    @property
    def per_look_level(self) -> float:
        """Per-method, per-hourly-look level: the daily budget shared by the methods OR-ed
        together and by the 24 looks of a day."""
        return self.budget_per_100_days / 100 / len(self.methods) / DAY_H

    @property
    def llr_threshold(self) -> float:
        """Lorden: P(false alarm per look) <= e^-H, so H = ln(1 / per-look level)."""
        return math.log(1.0 / self.per_look_level)


@dataclass(slots=True)
class AberrationState:
    """The episode in progress: its first alarming hour, the last hour judged with an alarm
    and the count of quiet judged hours since."""

    episode_hour: int | None = None
    last_alarm_hour: int | None = None
    quiet_hours: int = 0

    def to_json(self) -> Any:
        return [self.episode_hour, self.last_alarm_hour, self.quiet_hours]

    @classmethod
    def from_json(cls, raw: Any) -> Self:
        if not raw:
            return cls()
        episode, last, quiet = raw
        return cls(episode, last, int(quiet))


@dataclass(frozen=True, slots=True)
class MethodResult:
    method: str
    alarm: bool
    judged: bool
    statistics: dict[str, float]
    expected: float | None = None
    threshold: float | None = None


class AberrationDetector:
    """Pure ``symptom_aberration`` detector for one series (see module doc)."""

    def __init__(self, params: AberrationParams | None = None) -> None:
        self.params = params or AberrationParams()

    @staticmethod
    def initial_state() -> AberrationState:
        return AberrationState()

    def on_declaration(self, state: AberrationState, subject: Subject,
                       case: Case) -> list[AlertEvent]:
        return []

    def on_clock(self, state: AberrationState, subject: Subject, *,
                 now_ms: int) -> list[AlertEvent]:
        return []

    def clock_due(self, state: AberrationState, subject: Subject) -> int | None:
        return None

    # -------------------------------------------------------------- judging an hour

    def armed(self, series: HourlySeries, hour: int) -> bool:
        return series.age_hours(hour) >= (self.params.baseline_days + 1) * DAY_H

    def share(self, series: HourlySeries, hour: int) -> tuple[float, float]:
        """Beta ``(a, b)`` of the baseline share: the days ending one day before ``hour``."""
        p = self.params
        end = hour - DAY_H
        first = end - p.baseline_days * DAY_H + 1
        total, sym = series.window(first, end)
        return (p.prior_share * p.prior_weight + sym,
                (1 - p.prior_share) * p.prior_weight + max(0, total - sym))

    def judge(self, series: HourlySeries, hour: int,
              methods: tuple[str, ...] | None = None) -> list[MethodResult]:
        """Every method's verdict on ``hour`` (pure; ``methods`` defaults to the params')."""
        if not self.armed(series, hour):
            return []
        a, b = self.share(series, hour)
        p_share = a / (a + b)
        out = []
        for method in methods or self.params.methods:
            if method == "llr_cusum":
                out.append(self._llr_cusum(series, hour, p_share))
            elif method == "cusum":
                out.append(self._std_cusum(series, hour, p_share))
            elif method == "negbin":
                out.append(self._negbin(series, hour))
            else:
                out.append(self._ears(series, hour, method))
        return out

    def on_hour_closed(self, state: AberrationState, subject: Subject, hour: int, *,
                       now_ms: int, late: bool) -> list[AlertEvent]:
        results = self.judge(subject.series, hour)
        if not any(r.judged for r in results):
            return []
        alarms = [r for r in results if r.alarm]
        quiet_to_close = self.params.quiet_hours_to_close
        last = state.last_alarm_hour
        if not alarms:
            if state.episode_hour is not None and (last is None or hour > last):
                state.quiet_hours += 1
                if state.quiet_hours >= quiet_to_close:
                    state.episode_hour = None
            return []
        # An open episode, or (judging a late hour again) an alarm next to one: the same
        # condition, alerted already.
        same = state.episode_hour is not None or (
            last is not None and abs(hour - last) <= quiet_to_close)
        if last is None or hour >= last:
            state.last_alarm_hour = hour
            state.quiet_hours = 0
        if same:
            return []
        state.episode_hour = hour
        return [self._alert(subject, hour, now_ms, results, alarms)]

    # -------------------------------------------------------------- methods

    def _chain(self, series: HourlySeries, hour: int) -> list[tuple[int, int]]:
        start = hour - self.params.cusum_memory_hours + 1
        return [series.at(h) for h in range(start, hour + 1)]

    def _llr_cusum(self, series: HourlySeries, hour: int, p_share: float) -> MethodResult:
        p = self.params
        threshold = p.llr_threshold
        log_rho = math.log(p.rho)
        s = peak = 0.0
        alarm = False
        m_last = 0.0
        for total, sym in self._chain(series, hour):
            m_last = p_share * total
            s = max(0.0, s + sym * log_rho - m_last * (p.rho - 1))
            peak = s
            alarm = s >= threshold
            if alarm:
                s = 0.0
        total, sym = series.at(hour)
        return MethodResult("llr_cusum", alarm, total > 0 or peak > 0,
                            {"llr_cusum_s": round(peak, 4), "share": round(p_share, 6),
                             "hour_observed": float(sym), "hour_expected": round(m_last, 4)},
                            expected=self._expected_24h(series, hour, p_share),
                            threshold=round(threshold, 4))

    def _std_cusum(self, series: HourlySeries, hour: int, p_share: float) -> MethodResult:
        p = self.params
        s = peak = 0.0
        alarm = judged = False
        m = 0.0
        for total, sym in self._chain(series, hour):
            if total == 0:
                judged, alarm = False, False
                continue
            m = max(p_share * total, p.min_expected)
            s = max(0.0, s + (sym - m) / math.sqrt(m) - p.cusum_k)
            peak, judged = s, True
            alarm = s >= p.cusum_h
            if alarm:
                s = 0.0
        return MethodResult("cusum", alarm, judged,
                            {"cusum_s": round(peak, 4), "cusum_m": round(m, 4)},
                            expected=self._expected_24h(series, hour, p_share),
                            threshold=p.cusum_h)

    @staticmethod
    def _expected_24h(series: HourlySeries, hour: int, p_share: float) -> float:
        """What the CUSUMs expect of the trailing 24 hours (the alert's window): the
        baseline share of their declarations. Their statistics give the hour's own."""
        return round(p_share * series.window(hour - DAY_H + 1, hour)[0], 4)

    def _periods(self, series: HourlySeries, hour: int, days: int) -> list[tuple[int, int]]:
        """``(total, symptomatic)`` of the trailing 24 hours ending at ``hour - 24 j``,
        ``j = 0..days``, while fully within the history."""
        out = []
        for j in range(days + 1):
            end = hour - DAY_H * j
            if series.first_hour is None or end - DAY_H + 1 < series.first_hour:
                break
            out.append(series.window(end - DAY_H + 1, end))
        return out

    def _ears(self, series: HourlySeries, hour: int, method: str) -> MethodResult:
        p = self.params
        periods = self._periods(series, hour, 11)
        if len(periods) < 10 or periods[0][0] == 0 or any(n == 0 for n, _ in periods[1:10]):
            return MethodResult(method, False, False, {})
        n_t, s_t = periods[0]

        def c2_at(k: int) -> float | None:
            if k + 10 > len(periods) or periods[k][0] == 0 or any(
                    n == 0 for n, _ in periods[k + 3:k + 10]):
                return None
            nk, sk = periods[k]
            rescaled = [s * nk / n for n, s in periods[k + 3:k + 10]]
            return _z(sk, rescaled, p.min_sigma)[0]

        rescaled = [s * n_t / n for n, s in periods[1:8]]
        c1, mean1, sd1 = _z(s_t, rescaled, p.min_sigma)
        c2 = c2_at(0)
        stats = {"c1": round(c1, 4)}
        if c2 is not None:
            stats["c2"] = round(c2, 4)
        if method == "ears_c1":
            return MethodResult(method, c1 > p.c1_threshold and s_t >= p.min_cases, True, stats,
                                expected=round(mean1, 4),
                                threshold=round(mean1 + p.c1_threshold * sd1, 4))
        if method == "ears_c2":
            return MethodResult(method, c2 is not None and c2 > p.c2_threshold
                                and s_t >= p.min_cases, c2 is not None, stats,
                                expected=round(mean1, 4))
        previous = [c2_at(1), c2_at(2)]
        if c2 is None or any(v is None for v in previous):
            return MethodResult(method, False, False, stats)
        c3 = ears_c3([v for v in previous[::-1] if v is not None] + [c2])
        stats["c3"] = round(c3, 4)
        return MethodResult(method, c3 >= p.c3_threshold and s_t >= p.min_cases, True, stats,
                            expected=round(mean1, 4), threshold=p.c3_threshold)

    def _negbin(self, series: HourlySeries, hour: int) -> MethodResult:
        p = self.params
        periods = self._periods(series, hour, 20)
        if len(periods) < 2 or periods[0][0] == 0:
            return MethodResult("negbin", False, False, {})
        n0, y0 = periods[0]
        offset = p.utc_offset_min
        weekend = [local_weekday(hour - DAY_H * j - 12, offset) >= 5
                   for j in range(len(periods))]
        # periods[1] is yesterday's same 24 hours: a one-day guard band, as for the share
        base = periods[2:]
        fit = fit_negbin([float(s) for _, s in base], [float(n) for n, _ in base], weekend[2:],
                         y0=y0, n0=float(n0), weekend0=weekend[0])
        if fit is None:
            return MethodResult("negbin", False, False, {})
        level = p.per_look_level
        alarm = fit.p_value <= level and y0 >= p.min_cases
        return MethodResult("negbin", alarm, True,
                            {"p_value": fit.p_value, "dispersion": round(fit.dispersion, 4),
                             "periods": float(fit.periods), "trend": float(fit.trend)},
                            expected=round(fit.expected, 4), threshold=level)

    # -------------------------------------------------------------- the alert

    def _alert(self, subject: Subject, hour: int, now_ms: int, results: list[MethodResult],
               alarms: list[MethodResult]) -> AlertEvent:
        end_ms = (hour + 1) * HOUR_MS
        method = ", ".join(r.method for r in alarms)
        first = alarms[0]
        observed_24h = subject.series.window(hour - DAY_H + 1, hour)[1]
        stats: dict[str, float] = {}
        for r in results:
            stats |= r.statistics
        expected = first.expected
        exp_txt = f"{expected:.2f}" if expected is not None else "n/a"
        place = subject.place
        return make_alert(
            kind=AlertKind.SYMPTOM_ABERRATION,
            condition=(subject.key, hour),
            severity=Severity.CRITICAL if len(alarms) >= 2 else Severity.WARNING,
            detected_at_ms=now_ms,
            vi=f"Tỷ lệ người có triệu chứng tại {place} tăng bất thường: {observed_24h} "
               f"người trong 24 giờ (mức kỳ vọng của phương pháp {first.method}: {exp_txt}), "
               f"phát hiện bởi {method}",
            en=f"Abnormal rise in the share of symptomatic declarants at {place}: "
               f"{observed_24h} in 24 h ({first.method} expected {exp_txt}), found by {method}",
            checkpoint_id=subject.checkpoint_id,
            ward_code=subject.ward_code,
            window_ms=(end_ms - DAY_H * HOUR_MS, end_ms),
            evidence=Evidence(method=method, observed=float(observed_24h), expected=expected,
                              threshold=first.threshold, statistics=stats,
                              **_daily_chart(subject.series, hour, expected)),
        )


CHART_DAYS = 14


def _daily_chart(series: HourlySeries, hour: int, expected: float | None) -> dict[str, Any]:
    """For the console's chart: symptomatic declarants in each of the last 14 24-hour
    periods ending at ``hour`` (oldest first) and a band of the expected count +- 2
    Poisson standard deviations."""
    values = tuple(float(series.window(hour - DAY_H * (d + 1) + 1, hour - DAY_H * d)[1])
                   for d in range(CHART_DAYS - 1, -1, -1))
    if expected is None:
        return {"series": values, "step_s": DAY_H * 3600}
    spread = 2 * math.sqrt(max(expected, 0.0))
    return {"series": values, "step_s": DAY_H * 3600,
            "series_expected": (round(expected, 4),) * CHART_DAYS,
            "series_threshold": (round(expected + spread, 4),) * CHART_DAYS}

"""``symptom_cluster``: unusually many distinct symptomatic people at one checkpoint within
a short window, raised as soon as the case that completes it is processed.

Test: symptomatic people among the declarants of a window
---------------------------------------------------------
Each symptomatic declaration at ``t`` looks at its trailing window ``(t - w, t]`` (``w =
window_s``, 60 min) holding ``n`` declarations and ``k`` distinct symptomatic declarants
(a late declaration also completes the windows of the later cases within ``w``). The
background model is that each declarant is symptomatic with the checkpoint's share ``p``.
The share is learned, so it is uncertain: ``p ~ Beta(a, b)`` with
``a = prior_share * prior_weight + S``, ``b = ... + N - S`` from the ``N`` declarations
and ``S`` new symptomatic declarants of the last ``baseline_days`` (a prior of 1 % worth
200 declarations until there is data). Conditioning on the window's
own volume ``n`` makes the test indifferent to the time of day, the day of the week and
traffic surges: a busy hour at a market needs more cases than a quiet one at an office.

Repeated looks (the scan-statistic problem)
-------------------------------------------
The test looks again at every symptomatic arrival, over a sliding window. Every window
holding ``k`` cases is the trailing window of its last case, so a false alarm is some
arrival whose trailing window already holds ``k - 1`` other symptomatic people, and by the
union bound over arrivals (the approximation of Naus and of Glaz, Naus and Wallenstein for
rare events),

    false alarms per day <= m * P(BetaBinomial(n - 1, a, b) >= k - 1),

``m = p * N_day`` the expected symptomatic arrivals a day. The window raises a cluster when
``k >= min_people`` and ``P(BetaBinomial(n - 1, a, b) >= k - 1) <= budget / max(1, m)``:
the per-look level shrinks with the number of looks, so the daily rate stays within
``budget_per_100_days`` (0.2 by default). On background noise alone, three coughs in an
hour at a quiet office raise a cluster; a busy market hour needs several more.

Cold start: no baseline day yet, the prior share applies (1 %, uncertain), with the day's
own volume: a new checkpoint is already protected, conservatively.

Late declarations count: a late symptomatic declaration joins the windows around its own
``scanned_at`` (within ``horizon_s``, 21 days, the retention) and can complete a cluster
in the past; the alert then carries that past window.

One condition, one alert: a cluster *episode* spans from its first case to ``window_s``
after its last; a qualifying window overlapping an episode extends it and raises nothing.
The alert id derives from the checkpoint and the episode's first case.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Self
from uuid import UUID

from detectors.alerts import make_alert
from detectors.base import DEFAULT_BUDGET_PER_100_DAYS, Case, Subject
from detectors.series import HourlySeries
from detectors.tails import betabinom_sf, upper_quantile
from vhc_common.schemas import AlertEvent, AlertKind, Evidence, Severity
from vhc_common.timebase import DAY_H, HOUR_MS

__all__ = ["ClusterDetector", "ClusterParams", "ClusterState", "Share"]


@dataclass(frozen=True, slots=True)
class ClusterParams:
    min_people: int = 3
    window_s: int = 3600
    budget_per_100_days: float = DEFAULT_BUDGET_PER_100_DAYS
    baseline_days: int = 7
    prior_share: float = 0.01
    prior_weight: float = 200.0
    horizon_s: int = 21 * 86_400

    def __post_init__(self) -> None:
        if self.min_people < 2:
            raise ValueError(f"min_people must be >= 2, got {self.min_people}")
        if not 60 <= self.window_s <= 86_400:
            raise ValueError(f"window_s must be within 60..86400, got {self.window_s}")
        if not 0 < self.budget_per_100_days <= 100:
            raise ValueError(
                f"budget_per_100_days must be within (0, 100], got {self.budget_per_100_days}")
        if not 1 <= self.baseline_days <= 21:
            raise ValueError(f"baseline_days must be within 1..21, got {self.baseline_days}")
        if not 0 < self.prior_share < 1 or self.prior_weight <= 0:
            raise ValueError(f"need 0 < prior_share < 1 and prior_weight > 0, got "
                             f"{self.prior_share}, {self.prior_weight}")
        if self.horizon_s < self.window_s:
            raise ValueError(f"horizon_s must be >= window_s, got {self.horizon_s}")


@dataclass(slots=True)
class ClusterState:
    """Symptomatic cases ``(scanned_at_ms, person_key, declaration_id)`` sorted by time, and
    episodes ``[first_case_ms, last_case_ms]``."""

    cases: list[tuple[int, str, str]] = field(default_factory=list)
    episodes: list[list[int]] = field(default_factory=list)
    newest_ms: int = 0

    def to_json(self) -> Any:
        return {"c": self.cases, "e": self.episodes, "n": self.newest_ms}

    @classmethod
    def from_json(cls, raw: Any) -> Self:
        if not raw:
            return cls()
        return cls(cases=[(int(t), str(p), str(d)) for t, p, d in raw["c"]],
                   episodes=[[int(a), int(b)] for a, b in raw["e"]],
                   newest_ms=int(raw["n"]))


@dataclass(frozen=True, slots=True)
class Share:
    """The background share as a Beta(a, b), and the expected symptomatic arrivals a day."""

    a: float
    b: float
    per_day: float

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)


class ClusterDetector:
    """Pure ``symptom_cluster`` detector for one checkpoint (see module doc)."""

    def __init__(self, params: ClusterParams | None = None) -> None:
        self.params = params or ClusterParams()
        self._window_ms = self.params.window_s * 1000
        self._budget_per_day = self.params.budget_per_100_days / 100

    @staticmethod
    def initial_state() -> ClusterState:
        return ClusterState()

    def share(self, series: HourlySeries, at_ms: int) -> Share:
        """The background share before ``at_ms``'s day, and symptomatic arrivals a day."""
        p = self.params
        day_start = at_ms // HOUR_MS - (at_ms // HOUR_MS) % DAY_H
        first = day_start - p.baseline_days * DAY_H
        if series.first_hour is not None:
            first = max(first, series.first_hour)
        total, sym = series.window(first, day_start - 1) if first < day_start else (0, 0)
        days = (day_start - first) / DAY_H
        if days < 1:  # cold start: the last 24 hours tell the volume
            total_24h = series.window(at_ms // HOUR_MS - DAY_H + 1, at_ms // HOUR_MS)[0]
            per_day_volume = float(total_24h)
            total = sym = 0
        else:
            per_day_volume = total / days
        a = p.prior_share * p.prior_weight + sym
        b = (1 - p.prior_share) * p.prior_weight + max(0, total - sym)
        return Share(a, b, per_day_volume * a / (a + b))

    def level(self, share: Share) -> float:
        """The per-look level: the daily budget over the looks (arrivals) a day."""
        return self._budget_per_day / max(1.0, share.per_day)

    def volume(self, series: HourlySeries, start_ms: int, end_ms: int, newest_ms: int) -> float:
        """Declarations in ``[start_ms, end_ms]``, prorating hours (the newest hour only up to
        ``newest_ms``, as far as it has been seen)."""
        n = 0.0
        for hour in range(start_ms // HOUR_MS, end_ms // HOUR_MS + 1):
            h0 = hour * HOUR_MS
            seen_until = min(h0 + HOUR_MS, max(newest_ms, h0 + 1))
            overlap = min(end_ms, seen_until) - max(start_ms, h0)
            if overlap > 0:
                n += series.total(hour) * overlap / (seen_until - h0)
        return n

    # -------------------------------------------------------------- the contract

    def on_declaration(self, state: ClusterState, subject: Subject, case: Case) -> list[AlertEvent]:
        at_ms = case.scanned_at_ms
        state.newest_ms = max(state.newest_ms, at_ms)
        floor_ms = state.newest_ms - self.params.horizon_s * 1000
        if not case.symptomatic or at_ms < floor_ms:
            return []
        if any(c[2] == case.declaration_id for c in state.cases):
            return []  # a replayed symptomatic declaration changes nothing
        bisect.insort(state.cases, (at_ms, case.person_key, case.declaration_id))
        alert = self._check(state, subject, at_ms)
        self._prune(state, floor_ms)
        return [alert] if alert is not None else []

    def on_hour_closed(self, state: ClusterState, subject: Subject, hour: int, *, now_ms: int,
                       late: bool) -> list[AlertEvent]:
        return []

    def on_clock(self, state: ClusterState, subject: Subject, *, now_ms: int) -> list[AlertEvent]:
        return []

    def clock_due(self, state: ClusterState, subject: Subject) -> int | None:
        return None

    # -------------------------------------------------------------- internals

    def _check(self, state: ClusterState, subject: Subject, at_ms: int) -> AlertEvent | None:
        """Test the trailing window of every case whose window holds the new one: for a
        case in time order that is its own window only; a late case can complete the
        window of a later case. One window per case: the looks the budget counts."""
        p = self.params
        w = self._window_ms
        times = [c[0] for c in state.cases]
        share = self.share(subject.series, at_ms)
        level = self.level(share)
        first_end = bisect.bisect_left(times, at_ms)
        last_end = bisect.bisect_right(times, at_ms + w)
        found: tuple[float, int, int, int, float] | None = None  # (p, k, i, j, n)
        for j in range(first_end + 1, last_end + 1):  # window (times[j-1] - w, times[j-1]]
            end = times[j - 1]
            i = bisect.bisect_right(times, end - w, hi=j)
            distinct = len({state.cases[x][1] for x in range(i, j)})
            if distinct < p.min_people:
                continue
            n = max(float(distinct), self.volume(subject.series, end - w, end,
                                                 state.newest_ms))
            p_value = betabinom_sf(distinct - 1, max(0, round(n) - 1), share.a, share.b)
            if p_value <= level:
                found = (p_value, distinct, i, j, n)
                break  # the first case whose window holds a cluster raises it
        if found is None:
            return None
        p_value, distinct, i, j, n = found
        first_ms, last_ms = times[i], times[j - 1]
        for episode in state.episodes:
            if first_ms <= episode[1] + w and last_ms >= episode[0] - w:
                episode[0] = min(episode[0], first_ms)
                episode[1] = max(episode[1], last_ms)
                return None  # the same condition: it is already alerted
        state.episodes.append([first_ms, last_ms])
        others = max(0, round(n) - 1)
        k_eff = 1 + upper_quantile(lambda q: betabinom_sf(q, others, share.a, share.b),
                                   level, start=0, limit=max(1, others + 1))
        k_eff = max(p.min_people, k_eff)
        cases = state.cases[i:j]
        cp = subject.checkpoint_id
        minutes = p.window_s // 60
        return make_alert(
            kind=AlertKind.SYMPTOM_CLUSTER,
            condition=(cp, first_ms),
            severity=Severity.CRITICAL if distinct >= 2 * k_eff else Severity.WARNING,
            detected_at_ms=max(at_ms, state.newest_ms),
            vi=f"Cụm {distinct} người có triệu chứng tại {subject.place} trong {minutes} "
               f"phút, trong số khoảng {n:.0f} lượt khai báo (ngưỡng {k_eff})",
            en=f"Cluster of {distinct} symptomatic people at {subject.place} within {minutes} "
               f"minutes, among about {n:.0f} declarations (threshold {k_eff})",
            checkpoint_id=cp,
            ward_code=subject.ward_code,
            window_ms=(first_ms, first_ms + w),
            evidence=Evidence(
                method=f"distinct symptomatic declarants in {p.window_s} s against a "
                       "beta-binomial background share; per-look level budget / arrivals",
                observed=float(distinct),
                expected=round(n * share.mean, 4),
                threshold=float(k_eff),
                declaration_ids=tuple(UUID(c[2]) for c in cases),
                person_keys=tuple(dict.fromkeys(c[1] for c in cases)),
                statistics={"p_value": p_value, "level": level, "window_declarations":
                            round(n, 1), "share": round(share.mean, 6)},
            ),
        )

    def _prune(self, state: ClusterState, floor_ms: int) -> None:
        w = self._window_ms
        if state.cases and state.cases[0][0] < floor_ms - w:
            cut = bisect.bisect_left(state.cases, (floor_ms - w, "", ""))
            state.cases = state.cases[cut:]
        state.episodes = [e for e in state.episodes if e[1] + w >= floor_ms - w]

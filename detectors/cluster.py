"""``symptom_cluster``: many distinct symptomatic people at one checkpoint within a window.

Rule
----
An alert is raised as soon as some sliding window of ``window_s`` seconds (over
``scanned_at``) holds at least ``k_eff`` *distinct* symptomatic declarants (by person key)
at one checkpoint, where

    k_eff = max(min_people, q)

and ``q`` is the smallest count with ``P(X >= q) < alpha`` for ``X ~ Poisson(lambda)``,
``lambda = share * volume``: ``share`` is the checkpoint's symptomatic share over its last
``baseline_days`` complete days, ``volume`` its mean number of declarations per window over
those days. Three coughs in an hour are a cluster at a ward office that sees 40 people a
day, and ordinary background at a market that sees 5,000: there ``lambda`` is about 4 and
``k_eff`` about 12 at ``alpha = 0.001``.

Using the daily mean volume (not the window's own volume) errs towards alerting at peak
hours; it is a deliberate choice for sensitivity, and it keeps the state small.

Cold start: until one complete baseline day exists, ``k_eff = min_people``: the fixed
floor needs no baseline, and the background can only raise it.

Late declarations count: a late symptomatic declaration joins the windows around its own
``scanned_at`` (within ``horizon_s``, default 21 days, the retention) and can complete a
cluster in the past; the alert then carries that past window.

Replays: a symptomatic declaration already held is ignored (by declaration id). Day
totals assume each declaration is applied once; the stream layer guarantees that by
skipping records at or below the offset it last applied for the checkpoint.

One condition, one alert: a cluster *episode* spans from its first case to ``window_s``
after its last; a qualifying window overlapping an episode extends it and raises nothing.
After the episode ends (no qualifying case for ``window_s``) a new cluster is a new alert.
The alert id is derived from the checkpoint and the episode's first case, so replays
yield the same id.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from uuid import UUID

from detectors.alerts import make_alert
from detectors.flags import DeclarationFlags
from detectors.poisson import poisson_threshold
from vhc_common.schemas import AlertEvent, AlertKind, DeclarationEvent, Evidence, Severity

__all__ = ["ClusterDetector", "ClusterParams", "ClusterState"]

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class ClusterParams:
    min_people: int = 3
    window_s: int = 3600
    alpha: float = 0.001
    baseline_days: int = 7
    horizon_s: int = 21 * 86_400

    def __post_init__(self) -> None:
        if self.min_people < 2:
            raise ValueError(f"min_people must be >= 2, got {self.min_people}")
        if not 60 <= self.window_s <= 7 * 86_400:
            raise ValueError(f"window_s must be within 60..604800, got {self.window_s}")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be within (0, 0.5), got {self.alpha}")
        if not 1 <= self.baseline_days <= 56:
            raise ValueError(f"baseline_days must be within 1..56, got {self.baseline_days}")
        if self.horizon_s < self.window_s:
            raise ValueError(f"horizon_s must be >= window_s, got {self.horizon_s}")


@dataclass(slots=True)
class ClusterState:
    """Symptomatic cases ``(scanned_at_ms, person_key, declaration_id)`` sorted by time,
    episodes ``[first_case_ms, last_case_ms]``, and per-day ``[total, symptomatic]``."""

    cases: list[tuple[int, str, str]] = field(default_factory=list)
    episodes: list[list[int]] = field(default_factory=list)
    days: dict[int, list[int]] = field(default_factory=dict)
    newest_ms: int = 0

    def encode(self) -> str:
        return json.dumps({"c": self.cases, "e": self.episodes,
                           "d": {str(k): v for k, v in self.days.items()},
                           "n": self.newest_ms})

    @classmethod
    def decode(cls, data: str | None) -> ClusterState:
        if not data:
            return cls()
        raw = json.loads(data)
        return cls(cases=[(int(t), str(p), str(d)) for t, p, d in raw["c"]],
                   episodes=[[int(a), int(b)] for a, b in raw["e"]],
                   days={int(k): [int(v[0]), int(v[1])] for k, v in raw["d"].items()},
                   newest_ms=int(raw["n"]))


class ClusterDetector:
    """Pure ``symptom_cluster`` detector for one checkpoint's state (see module doc)."""

    def __init__(self, params: ClusterParams | None = None) -> None:
        self.params = params or ClusterParams()
        self._window_ms = self.params.window_s * 1000

    @staticmethod
    def initial_state() -> ClusterState:
        return ClusterState()

    def threshold(self, state: ClusterState, at_ms: int) -> tuple[int, float]:
        """``(k_eff, lambda)`` for a window around ``at_ms``."""
        day = at_ms // DAY_MS
        past = [state.days[d] for d in range(day - self.params.baseline_days, day)
                if d in state.days]
        total = sum(t for t, _ in past)
        if not past or total == 0:
            return self.params.min_people, 0.0
        share = sum(s for _, s in past) / total
        volume = total / len(past) * self._window_ms / DAY_MS
        lam = share * volume
        return max(self.params.min_people, poisson_threshold(lam, self.params.alpha)), lam

    def update(
        self,
        state: ClusterState,
        declaration: DeclarationEvent,
        flags: DeclarationFlags,
        *,
        ward_code: str | None = None,
    ) -> tuple[ClusterState, list[AlertEvent]]:
        did = str(declaration.declaration_id)
        symptomatic = bool(flags & DeclarationFlags.SYMPTOMATIC)
        if symptomatic and any(c[2] == did for c in state.cases):
            return state, []  # a replayed symptomatic declaration changes nothing
        at_ms = int(declaration.scanned_at.timestamp() * 1000)
        state.newest_ms = max(state.newest_ms, at_ms)
        floor_ms = state.newest_ms - self.params.horizon_s * 1000
        if at_ms < floor_ms:
            return state, []
        day = state.days.setdefault(at_ms // DAY_MS, [0, 0])
        day[0] += 1
        alerts: list[AlertEvent] = []
        if symptomatic:
            day[1] += 1
            bisect.insort(state.cases, (at_ms, declaration.person.key, did))
            alert = self._check(state, declaration.checkpoint_id, at_ms, ward_code)
            if alert is not None:
                alerts.append(alert)
        self._prune(state, floor_ms)
        return state, alerts

    def _check(self, state: ClusterState, checkpoint_id: str, at_ms: int,
               ward_code: str | None) -> AlertEvent | None:
        w = self._window_ms
        times = [c[0] for c in state.cases]
        lo = bisect.bisect_left(times, at_ms - w)
        hi = bisect.bisect_right(times, at_ms + w)
        k_eff, lam = self.threshold(state, at_ms)
        best: tuple[int, int, int] | None = None  # (distinct, start index, end index)
        # Windows [s, s + w] that contain at_ms, starting at a case time s.
        for i in range(lo, hi):
            start = times[i]
            if start > at_ms:
                break
            j = bisect.bisect_right(times, start + w, lo=i, hi=hi)
            distinct = len({state.cases[x][1] for x in range(i, j)})
            if distinct >= k_eff and (best is None or distinct > best[0]):
                best = (distinct, i, j)
        if best is None:
            return None
        distinct, i, j = best
        first_ms, last_ms = times[i], times[j - 1]
        for episode in state.episodes:
            if first_ms <= episode[1] + w and last_ms >= episode[0] - w:
                episode[0] = min(episode[0], first_ms)
                episode[1] = max(episode[1], last_ms)
                return None  # the same condition: it is already alerted
        state.episodes.append([first_ms, last_ms])
        cases = state.cases[i:j]
        return make_alert(
            kind=AlertKind.SYMPTOM_CLUSTER,
            condition=(checkpoint_id, first_ms),
            severity=Severity.CRITICAL if distinct >= 2 * k_eff else Severity.WARNING,
            detected_at_ms=max(at_ms, state.newest_ms),
            vi=f"Cụm {distinct} người có triệu chứng tại {checkpoint_id} trong "
               f"{self.params.window_s // 60} phút (ngưỡng {k_eff})",
            en=f"Cluster of {distinct} symptomatic people at {checkpoint_id} within "
               f"{self.params.window_s // 60} minutes (threshold {k_eff})",
            checkpoint_id=checkpoint_id,
            ward_code=ward_code,
            window_ms=(first_ms, first_ms + w),
            evidence=Evidence(
                method=f"distinct symptomatic declarants in {self.params.window_s} s; "
                       f"threshold max(k, Poisson upper {self.params.alpha} quantile)",
                observed=float(distinct),
                expected=round(lam, 4),
                threshold=float(k_eff),
                declaration_ids=tuple(UUID(c[2]) for c in cases),
                person_keys=tuple(dict.fromkeys(c[1] for c in cases)),
            ),
        )

    def _prune(self, state: ClusterState, floor_ms: int) -> None:
        w = self._window_ms
        if state.cases and state.cases[0][0] < floor_ms - w:
            cut = bisect.bisect_left(state.cases, (floor_ms - w, "", ""))
            state.cases = state.cases[cut:]
        state.episodes = [e for e in state.episodes if e[1] + w >= floor_ms - w]
        oldest_day = floor_ms // DAY_MS - self.params.baseline_days - 1
        for d in [d for d in state.days if d < oldest_day]:
            del state.days[d]

"""``volume_surge`` and ``checkpoint_silent``: a checkpoint's traffic far above, or far below
(or at zero), what it normally sees at that hour while it is open.

Rule
----
For each closed event-time hour ``h`` in which the checkpoint is open, the expected count
is the mean of its totals at the same hour of the day on the previous ``baseline_days``
days (traffic follows the time of day; a market at 07:00 is not an office at 07:00):

    expected = mean(n_{h - 24 j}, j = 1..baseline_days),   X ~ Poisson(max(expected, 0.5))

* surge:  n_h >= surge_min_ratio * expected  and  P(X >= n_h) < alpha;
* silent: expected >= silent_min_expected   and  P(X <= n_h) < alpha
  (at alpha = 0.001, zero declarations is "silent" from an expected 6.9 an hour).

Hours outside ``opening_hours`` (local time, ``utc_offset_min``, Vietnam UTC+7 by default)
are not judged: an office is meant to be silent at night. ``None`` means always open.

Cold start: silent until ``baseline_days`` full days of history exist before the hour.

One condition, one alert: consecutive alarming open hours of one kind form an episode;
closed hours do not end it, a normal open hour does. Ids derive from the checkpoint, the
kind and the episode's first hour.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from detectors.alerts import make_alert
from detectors.counts import HOUR_MS
from detectors.history import DAY_H, HourlyHistory
from detectors.poisson import poisson_cdf
from vhc_common.schemas import AlertEvent, AlertKind, Evidence, Severity

__all__ = ["VolumeDetector", "VolumeParams", "VolumeState", "is_open"]

VIETNAM_UTC_OFFSET_MIN = 7 * 60


def is_open(hour: int, opening_hours: tuple[str, ...] | None, utc_offset_min: int) -> bool:
    """Whether the whole event-time hour ``hour`` lies inside an opening interval."""
    if opening_hours is None:
        return True
    start_min = (hour * 60 + utc_offset_min) % (24 * 60)
    end_min = start_min + 60
    for interval in opening_hours:
        a, b = interval.split("-")
        open_min = int(a[:2]) * 60 + int(a[3:])
        close_min = int(b[:2]) * 60 + int(b[3:])
        if open_min <= start_min and end_min <= close_min:
            return True
    return False


@dataclass(frozen=True, slots=True)
class VolumeParams:
    baseline_days: int = 7
    alpha: float = 0.001
    surge_min_ratio: float = 2.0
    silent_min_expected: float = 5.0
    utc_offset_min: int = VIETNAM_UTC_OFFSET_MIN
    grace_s: int = 300

    def __post_init__(self) -> None:
        if not 1 <= self.baseline_days <= 28:
            raise ValueError(f"baseline_days must be within 1..28, got {self.baseline_days}")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be within (0, 0.5), got {self.alpha}")
        if self.surge_min_ratio <= 1:
            raise ValueError(f"surge_min_ratio must be > 1, got {self.surge_min_ratio}")
        if self.silent_min_expected <= 0:
            raise ValueError(
                f"silent_min_expected must be > 0, got {self.silent_min_expected}")


@dataclass(slots=True)
class VolumeState:
    evaluated_hour: int | None = None
    surge_episode: int | None = None
    silent_episode: int | None = None

    def encode(self) -> str:
        return json.dumps([self.evaluated_hour, self.surge_episode, self.silent_episode])

    @classmethod
    def decode(cls, data: str | None) -> VolumeState:
        if not data:
            return cls()
        evaluated, surge, silent = json.loads(data)
        return cls(evaluated, surge, silent)


class VolumeDetector:
    """Pure ``volume_surge`` / ``checkpoint_silent`` detector (see module doc)."""

    def __init__(self, params: VolumeParams | None = None) -> None:
        self.params = params or VolumeParams()

    @staticmethod
    def initial_state() -> VolumeState:
        return VolumeState()

    def expected(self, history: HourlyHistory, hour: int) -> float | None:
        """Same-hour mean over the baseline days, or ``None`` without a full baseline."""
        days = self.params.baseline_days
        if history.first_hour is None or history.first_hour > hour - DAY_H * days:
            return None
        return sum(history.at(hour - DAY_H * j)[0] for j in range(1, days + 1)) / days

    def advance(
        self,
        state: VolumeState,
        history: HourlyHistory,
        *,
        now_ms: int,
        checkpoint_id: str,
        opening_hours: tuple[str, ...] | None,
        ward_code: str | None = None,
    ) -> list[AlertEvent]:
        """Judge every open hour that stream time ``now_ms`` has closed since the last call."""
        if history.first_hour is None:
            return []
        closed_through = (now_ms - self.params.grace_s * 1000) // HOUR_MS - 1
        start = (history.first_hour if state.evaluated_hour is None
                 else state.evaluated_hour + 1)
        alerts: list[AlertEvent] = []
        for hour in range(max(start, closed_through - 2 * DAY_H), closed_through + 1):
            state.evaluated_hour = hour
            if not is_open(hour, opening_hours, self.params.utc_offset_min):
                continue
            alert = self._judge(state, history, hour, now_ms, checkpoint_id, ward_code)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _judge(self, state: VolumeState, history: HourlyHistory, hour: int, now_ms: int,
               checkpoint_id: str, ward_code: str | None) -> AlertEvent | None:
        p = self.params
        expected = self.expected(history, hour)
        if expected is None:
            return None
        observed = history.at(hour)[0]
        lam = max(expected, 0.5)
        surge = observed >= p.surge_min_ratio * expected and (
            1.0 - poisson_cdf(observed - 1, lam) < p.alpha)
        silent = expected >= p.silent_min_expected and poisson_cdf(observed, lam) < p.alpha
        alert = None
        if surge and state.surge_episode is None:
            state.surge_episode = hour
            alert = self._alert(AlertKind.VOLUME_SURGE, hour, now_ms, checkpoint_id,
                                ward_code, observed, expected)
        if silent and state.silent_episode is None:
            state.silent_episode = hour
            alert = self._alert(AlertKind.CHECKPOINT_SILENT, hour, now_ms, checkpoint_id,
                                ward_code, observed, expected)
        if not surge:
            state.surge_episode = None
        if not silent:
            state.silent_episode = None
        return alert

    def _alert(self, kind: AlertKind, hour: int, now_ms: int, checkpoint_id: str,
               ward_code: str | None, observed: int, expected: float) -> AlertEvent:
        p = self.params
        local_hour = ((hour * 60 + p.utc_offset_min) // 60) % 24
        if kind is AlertKind.VOLUME_SURGE:
            vi = (f"Lượng khai báo tại {checkpoint_id} tăng đột biến: {observed} trong giờ "
                  f"{local_hour:02d}:00 (thường {expected:.1f})")
            en = (f"Declarations at {checkpoint_id} surged: {observed} in the {local_hour:02d}:00 "
                  f"hour (usually {expected:.1f})")
        else:
            vi = (f"Điểm kiểm soát {checkpoint_id} gần như không có khai báo: {observed} trong "
                  f"giờ {local_hour:02d}:00 khi đang mở cửa (thường {expected:.1f})")
            en = (f"Checkpoint {checkpoint_id} went quiet: {observed} declarations in the "
                  f"{local_hour:02d}:00 hour while open (usually {expected:.1f})")
        return make_alert(
            kind=kind,
            condition=(checkpoint_id, hour),
            severity=Severity.WARNING,
            detected_at_ms=now_ms,
            vi=vi,
            en=en,
            checkpoint_id=checkpoint_id,
            ward_code=ward_code,
            window_ms=(hour * HOUR_MS, (hour + 1) * HOUR_MS),
            evidence=Evidence(
                method=f"Poisson, same hour of day over {p.baseline_days} days, "
                       f"alpha {p.alpha}",
                observed=float(observed),
                expected=round(expected, 4),
                threshold=p.alpha,
            ),
        )

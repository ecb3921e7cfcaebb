"""Hourly counts of one series (a checkpoint, or a ward): the input of the baseline detectors.

``at(h) = (total, symptomatic)`` for event-time hour ``h`` (epoch ms // 3.6e6): ``total``
declarations, and ``symptomatic`` *new symptomatic declarants*, people with a symptomatic
declaration in that hour and none at this series in the 24 hours before (one sick person
who comes back, or visits several checkpoints of a ward, is one case, not several).

Hours are kept for ``keep_hours`` (default three weeks: the retention period, and the
longest baseline any detector uses) behind the newest hour. ``first_hour`` is the first
hour the series was seen in, which tells how much baseline exists.

Encoding: dense arrays from the oldest kept hour, so 504 hours stay a few kilobytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vhc_common import fastjson
from vhc_common.timebase import DAY_H, DAY_MS, HOUR_MS

__all__ = ["DEFAULT_KEEP_HOURS", "NEW_CASE_AFTER_MS", "QUARTER_MS", "HourlySeries"]

#: Three weeks: the retention period, and the longest like-day baseline.
DEFAULT_KEEP_HOURS = 21 * DAY_H


#: A symptomatic declarant counts again after this long without symptoms at the series.
NEW_CASE_AFTER_MS = DAY_MS


QUARTER_MS = 15 * 60_000


@dataclass(slots=True)
class HourlySeries:
    """Hourly counts of one checkpoint or ward. Change it through its methods only: its
    JSON text is kept between changes (``json_text``)."""

    hours: dict[int, list[int]] = field(default_factory=dict)
    first_hour: int | None = None
    #: declarations per quarter of an hour (``ms // QUARTER_MS``), for intraday shapes
    quarters: dict[int, int] = field(default_factory=dict)
    #: person key -> newest symptomatic declaration (ms), for the last day or two
    sick: dict[str, int] = field(default_factory=dict)
    #: ``json_text`` since the last change (a checkpoint's state is stored each hour it
    #: is judged, mostly without a new declaration)
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    def observe(self, at_ms: int, *, symptomatic: bool, person_key: str) -> bool:
        """Count one declaration; ``True`` if it is a new symptomatic declarant."""
        self._text = None
        new_case = False
        if symptomatic:
            last = self.sick.get(person_key)
            new_case = last is None or abs(at_ms - last) >= NEW_CASE_AFTER_MS
            if last is None or at_ms > last:
                self.sick[person_key] = at_ms
        self.add(at_ms // HOUR_MS, total=1, symptomatic=int(new_case))
        quarter = at_ms // QUARTER_MS
        self.quarters[quarter] = self.quarters.get(quarter, 0) + 1
        return new_case

    def quarter(self, quarter: int) -> int:
        return self.quarters.get(quarter, 0)

    def add(self, hour: int, *, total: int = 1, symptomatic: int = 0) -> None:
        self._text = None
        bucket = self.hours.get(hour)
        if bucket is None:
            self.hours[hour] = [total, symptomatic]
        else:
            bucket[0] += total
            bucket[1] += symptomatic
        self._seen(hour)

    def put(self, hour: int, *, total: int, symptomatic: int) -> None:
        """Set an hour's counts (absolute: applying the same value twice changes nothing)."""
        self._text = None
        if total or symptomatic:
            self.hours[hour] = [total, symptomatic]
        else:
            self.hours.pop(hour, None)
        self._seen(hour)

    def _seen(self, hour: int) -> None:
        if self.first_hour is None or hour < self.first_hour:
            self.first_hour = hour

    def at(self, hour: int) -> tuple[int, int]:
        bucket = self.hours.get(hour)
        return (bucket[0], bucket[1]) if bucket else (0, 0)

    def total(self, hour: int) -> int:
        bucket = self.hours.get(hour)
        return bucket[0] if bucket else 0

    def window(self, first: int, last: int) -> tuple[int, int]:
        """``(total, symptomatic)`` summed over hours ``first..last`` (inclusive)."""
        total = sym = 0
        if last - first + 1 > len(self.hours):
            for h, (t, s) in self.hours.items():
                if first <= h <= last:
                    total += t
                    sym += s
            return total, sym
        for h in range(first, last + 1):
            bucket = self.hours.get(h)
            if bucket:
                total += bucket[0]
                sym += bucket[1]
        return total, sym

    def age_hours(self, hour: int) -> int:
        """Hours of history before ``hour`` (0 for a series first seen at ``hour``)."""
        return 0 if self.first_hour is None else max(0, hour - self.first_hour)

    def prune(self, before_hour: int, *, now_ms: int) -> None:
        """Drop hours before ``before_hour`` and people not sick for two days."""
        self._text = None
        for old in [h for h in self.hours if h < before_hour]:
            del self.hours[old]
        for old in [q for q in self.quarters if q < before_hour * 4]:
            del self.quarters[old]
        floor = now_ms - 2 * NEW_CASE_AFTER_MS
        for person in [p for p, t in self.sick.items() if t < floor]:
            del self.sick[person]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"f": self.first_hour}
        if self.sick:
            out["k"] = self.sick
        if self.hours:
            base, top = min(self.hours), max(self.hours)
            totals = [0] * (top - base + 1)
            syms = [0] * (top - base + 1)
            for h, (t, s) in self.hours.items():
                totals[h - base] = t
                syms[h - base] = s
            out |= {"b": base, "t": totals, "s": syms}
        if self.quarters:
            qbase, qtop = min(self.quarters), max(self.quarters)
            qs = [0] * (qtop - qbase + 1)
            for q, n in self.quarters.items():
                qs[q - qbase] = n
            out |= {"qb": qbase, "q": qs}
        return out

    def json_text(self) -> str:
        """``to_json`` as compact JSON text (kept until the series changes)."""
        if self._text is None:
            self._text = fastjson.dumps(self.to_json())
        return self._text

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> HourlySeries:
        if not raw:
            return cls()
        series = cls(first_hour=raw.get("f"), sick=dict(raw.get("k", {})))
        if "b" in raw:
            base = int(raw["b"])
            for i, (t, s) in enumerate(zip(raw["t"], raw["s"], strict=True)):
                if t or s:
                    series.hours[base + i] = [int(t), int(s)]
        if "qb" in raw:
            qbase = int(raw["qb"])
            series.quarters = {qbase + i: int(n) for i, n in enumerate(raw["q"]) if n}
        return series

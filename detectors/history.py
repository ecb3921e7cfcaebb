"""Hourly declaration totals of one checkpoint: the shared input of the baseline detectors.

``hours[h] = [total, symptomatic]`` for event-time hour ``h`` (epoch ms // 3.6e6). Kept for
``keep_hours`` behind the newest evaluated hour; ``first_hour`` is the first hour the
checkpoint was seen, which tells how much baseline exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from detectors.counts import HOUR_MS
from detectors.flags import DeclarationFlags

__all__ = ["DAY_H", "HourlyHistory"]

DAY_H = 24


@dataclass(slots=True)
class HourlyHistory:
    hours: dict[int, list[int]] = field(default_factory=dict)
    first_hour: int | None = None

    def observe(self, scanned_at_ms: int, flags: DeclarationFlags) -> int:
        hour = scanned_at_ms // HOUR_MS
        bucket = self.hours.setdefault(hour, [0, 0])
        bucket[0] += 1
        bucket[1] += bool(flags & DeclarationFlags.SYMPTOMATIC)
        if self.first_hour is None or hour < self.first_hour:
            self.first_hour = hour
        return hour

    def at(self, hour: int) -> tuple[int, int]:
        bucket = self.hours.get(hour)
        return (bucket[0], bucket[1]) if bucket else (0, 0)

    def day_sum(self, end_hour: int) -> tuple[int, int]:
        """``(total, symptomatic)`` of the 24 hours ending with ``end_hour``."""
        total = sym = 0
        for h in range(end_hour - DAY_H + 1, end_hour + 1):
            bucket = self.hours.get(h)
            if bucket:
                total += bucket[0]
                sym += bucket[1]
        return total, sym

    def local_day_total(self, day_start_hour: int) -> int:
        """Declarations in the 24 hours from ``day_start_hour`` (a local day's first hour)."""
        return sum(self.at(h)[0] for h in range(day_start_hour, day_start_hour + DAY_H))

    def prune(self, before_hour: int) -> None:
        for old in [h for h in self.hours if h < before_hour]:
            del self.hours[old]

    def encode(self) -> str:
        return json.dumps({"h": {str(k): v for k, v in self.hours.items()},
                           "f": self.first_hour})

    @classmethod
    def decode(cls, data: str | None) -> HourlyHistory:
        if not data:
            return cls()
        raw = json.loads(data)
        return cls(hours={int(k): [int(v[0]), int(v[1])] for k, v in raw["h"].items()},
                   first_hour=raw["f"])

"""The one contract every detector follows, and what it is given.

A detector is pure: ``initial_state()`` makes its state; each ``on_*`` call mutates the
state *in place* (it lives in a table envelope, encoded once per batch) and returns the
alerts raised, as frozen ``AlertEvent``s. Time comes from the arguments (event time and
stream time), never from the clock. Three events drive detectors:

* ``on_declaration``: a declaration was applied to the series (in offset order; it may be
  late, i.e. older than hours already judged);
* ``on_hour_closed``: stream time passed the end of ``hour`` plus the grace period, so
  the hour is complete and can be judged (``late=True`` when an hour judged before is
  judged again because late declarations filled it: see ``streams.pipeline``);
* ``on_clock``: stream time moved on (every quarter of an hour), for detectors that
  judge an ongoing condition such as a silence.

A detector that has nothing to do for one of them returns ``[]``. ``clock_due`` says
from when ``on_clock`` can next do something (``None``: not before the state or the
series changes), so a caller may skip the looks before then: they would return ``[]``
and change nothing.

False-alarm budget
------------------
Every baseline and cluster detector is given a budget, ``false_alarms_per_100_days``: how
many alerts it may raise per 100 days of one series (checkpoint or ward) on ordinary
traffic. Each converts it into a per-look level that accounts for how often it looks (see
its docstring), so the budgets add up: five kinds at the default 0.2 stay under one false
alarm per 100 checkpoint-days together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar

from detectors.schedule import HoursTimeline, WeeklySchedule
from detectors.series import HourlySeries
from vhc_common.schemas import AlertEvent

__all__ = [
    "DEFAULT_BUDGET_PER_100_DAYS",
    "Case",
    "Detector",
    "DetectorState",
    "Subject",
]

#: Per detector kind and series: five kinds at 0.2 add up to 1 per 100 checkpoint-days.
DEFAULT_BUDGET_PER_100_DAYS = 0.2


class DetectorState(Protocol):
    """Detector state: small, JSON-encodable, restored exactly."""

    def to_json(self) -> Any: ...

    @classmethod
    def from_json(cls, raw: Any) -> Self: ...


S = TypeVar("S", bound=DetectorState)


@dataclass(frozen=True, slots=True)
class Case:
    """A declaration as the detectors see it (already deduplicated and flagged)."""

    declaration_id: str
    person_key: str
    scanned_at_ms: int
    symptomatic: bool


@dataclass(slots=True)
class Subject:
    """The series being judged and what is known about it.

    ``checkpoint_id`` is ``None`` for a ward series. ``hours`` are the registered opening
    hours over time (checkpoints only; empty means none registered).
    """

    series: HourlySeries
    checkpoint_id: str | None
    ward_code: str | None
    place: str
    hours: HoursTimeline = field(default_factory=HoursTimeline)

    @property
    def key(self) -> str:
        return self.checkpoint_id or f"ward:{self.ward_code}"

    def schedule_at(self, epoch_ms: int) -> WeeklySchedule | None:
        return self.hours.at(epoch_ms)


class Detector(Protocol[S]):
    """State in, alerts out (see the module docstring)."""

    def initial_state(self) -> S: ...

    def on_declaration(self, state: S, subject: Subject, case: Case) -> list[AlertEvent]: ...

    def on_hour_closed(self, state: S, subject: Subject, hour: int, *, now_ms: int,
                       late: bool) -> list[AlertEvent]: ...

    def on_clock(self, state: S, subject: Subject, *, now_ms: int) -> list[AlertEvent]: ...

    def clock_due(self, state: S, subject: Subject) -> int | None:
        """The earliest ``now_ms`` at which ``on_clock`` can raise an alert or change
        ``state``, as long as neither ``state`` nor ``subject.series`` changes (``None``:
        not before one of them does)."""
        ...

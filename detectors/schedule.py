"""Opening hours: when a checkpoint is meant to be open, by day of the week, in local time.

Two forms are accepted (contract v1.1):

* the daily list, ``["07:00-11:30", "13:30-17:00"]``: the same intervals every day;
* OpenStreetMap's ``opening_hours`` syntax, restricted to what repeats every week:
  ``"Mo-Fr 07:00-17:00; Sa 08:00-12:00"``.

The OpenStreetMap subset
------------------------
Rules are separated by ``;`` and read in order; a rule *replaces* what earlier rules said
about the days it names (OpenStreetMap's override semantics). A rule is::

    [days] [times] [off]

* ``days``: ``Mo Tu We Th Fr Sa Su``, ranges (``Mo-Fr``, wrapping ``Fr-Mo``) and lists
  (``Mo,We,Fr`` or ``Mo-We,Fr``); without days a rule applies to every day;
* ``times``: ``HH:MM-HH:MM`` spans, comma-separated; an end before the start, or past
  ``24:00`` (``22:00-26:00``), runs on into the next day; without times, the whole day;
* ``off`` (or ``closed``): closed on those days;
* ``24/7``: always open.

Anything else (public holidays ``PH``, months, week numbers, sun times, comments) cannot be
judged by hour-of-week baselines and is refused with :class:`OpeningHoursError`, whose
message names the rule and the part that is wrong.

``WeeklySchedule.open_fraction(hour)`` is the share of an epoch hour that lies within the
opening hours (0, 1, or between for a part-open hour such as 07:30-08:00).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from detectors.errors import DetectorError
from vhc_common.timebase import LOCAL_UTC_OFFSET_MIN, local_hour_of_week

__all__ = [
    "HoursChange",
    "HoursTimeline",
    "OpeningHoursError",
    "WeeklySchedule",
    "parse_opening_hours",
]

_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAY_MIN = 24 * 60
_WEEK_MIN = 7 * _DAY_MIN
_TIME_SPAN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_DAILY_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_DAY_SELECTOR = re.compile(r"^[A-Z][a-z](-[A-Z][a-z])?(,[A-Z][a-z](-[A-Z][a-z])?)*$")


class OpeningHoursError(DetectorError, ValueError):
    """Opening hours that cannot be read; the message names the part that is wrong."""


@dataclass(frozen=True, slots=True)
class WeeklySchedule:
    """Open intervals over the week in local minutes ``[start, end)`` from Monday 00:00,
    sorted and disjoint (``end <= 7 * 24 * 60``)."""

    intervals: tuple[tuple[int, int], ...]

    def open_fraction(self, hour: int, utc_offset_min: int = LOCAL_UTC_OFFSET_MIN) -> float:
        """Share of epoch hour ``hour`` (60 minutes) inside the opening intervals."""
        start = local_hour_of_week(hour, utc_offset_min) * 60
        end = start + 60
        starts = [a for a, _ in self.intervals]
        i = max(0, bisect.bisect_right(starts, start) - 1)
        covered = 0
        for a, b in self.intervals[i:]:
            if a >= end:
                break
            covered += max(0, min(b, end) - max(a, start))
        return covered / 60

    def weekly_open_hours(self) -> float:
        return sum(b - a for a, b in self.intervals) / 60


def _span(text: str, rule: str, number: int) -> tuple[int, int]:
    match = _TIME_SPAN.match(text)
    if match is None:
        raise OpeningHoursError(
            f"rule {number} ({rule!r}): {text!r} is not a time span HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 48:
        raise OpeningHoursError(f"rule {number} ({rule!r}): {text!r} has an impossible time")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end == start:
        raise OpeningHoursError(f"rule {number} ({rule!r}): {text!r} is empty")
    if end < start:
        end += _DAY_MIN  # runs on past midnight
    if end - start > _DAY_MIN:
        raise OpeningHoursError(f"rule {number} ({rule!r}): {text!r} is longer than a day")
    return start, end


def _days(text: str, rule: str, number: int) -> list[int]:
    if _DAY_SELECTOR.match(text) is None:
        raise OpeningHoursError(
            f"rule {number} ({rule!r}): {text!r} is not a day selector such as Mo-Fr or "
            f"Mo,We,Fr (public holidays, months and weeks are not supported)")
    days: list[int] = []
    for part in text.split(","):
        ends = part.split("-")
        for name in ends:
            if name not in _DAYS:
                raise OpeningHoursError(
                    f"rule {number} ({rule!r}): {name!r} is not a day ({', '.join(_DAYS)})")
        first = _DAYS.index(ends[0])
        last = _DAYS.index(ends[-1])
        span = (last - first) % 7
        days.extend((first + i) % 7 for i in range(span + 1))
    return sorted(set(days))


def _parse_osm(text: str) -> WeeklySchedule:
    if not text.strip():
        raise OpeningHoursError("opening hours are empty: use null for always open")
    # per weekday: the (start, end) minute spans of that day's rule, end may pass 24:00
    per_day: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    rules = text.split(";")
    if len(rules) > 1 and not rules[-1].strip():
        rules = rules[:-1]  # a trailing ";" is common and harmless
    for number, raw in enumerate(rules, start=1):
        rule = raw.strip()
        if not rule:
            raise OpeningHoursError(f"rule {number} is empty (a stray ';'?)")
        if rule == "24/7":
            per_day = [[(0, _DAY_MIN)] for _ in range(7)]
            continue
        tokens = rule.split()
        closed = tokens[-1].lower() in {"off", "closed"}
        if closed:
            tokens = tokens[:-1]
        days = list(range(7))
        if tokens and not tokens[0][:1].isdigit():
            days = _days(tokens[0], rule, number)
            tokens = tokens[1:]
        spans: list[tuple[int, int]] = []
        for token in tokens:
            for piece in token.split(","):
                if piece:
                    spans.append(_span(piece, rule, number))
        if closed and spans:
            raise OpeningHoursError(f"rule {number} ({rule!r}): 'off' takes no times")
        if not closed and not spans:
            if len(tokens) == 0 and days == list(range(7)):
                raise OpeningHoursError(f"rule {number} ({rule!r}) says nothing")
            spans = [(0, _DAY_MIN)]  # days without times: open all day
        for day in days:
            per_day[day] = [] if closed else list(spans)
    week: list[tuple[int, int]] = []
    for day, spans in enumerate(per_day):
        for start, end in spans:
            a, b = day * _DAY_MIN + start, day * _DAY_MIN + end
            if b <= _WEEK_MIN:
                week.append((a, b))
            else:  # Sunday night into Monday morning
                week.append((a, _WEEK_MIN))
                week.append((0, b - _WEEK_MIN))
    return WeeklySchedule(_merge(week))


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple(merged)


def _parse_daily(intervals: Sequence[str]) -> WeeklySchedule:
    spans: list[tuple[int, int]] = []
    for i, interval in enumerate(intervals):
        match = _DAILY_SPAN.match(interval)
        if match is None:
            raise OpeningHoursError(f"interval {i + 1} ({interval!r}) is not HH:MM-HH:MM")
        start = int(match.group(1)) * 60 + int(match.group(2))
        end = int(match.group(3)) * 60 + int(match.group(4))
        if end <= start or end > _DAY_MIN:
            raise OpeningHoursError(
                f"interval {i + 1} ({interval!r}) must end after it starts, by 24:00")
        spans.extend((day * _DAY_MIN + start, day * _DAY_MIN + end) for day in range(7))
    return WeeklySchedule(_merge(spans))


def parse_opening_hours(value: str | Sequence[str] | None) -> WeeklySchedule | None:
    """The schedule of either form; ``None`` (always open) for ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        return _parse_osm(value)
    return _parse_daily(value)


@dataclass(frozen=True, slots=True)
class HoursChange:
    """Opening hours in force from ``effective_from_ms`` on (``None``: always open)."""

    effective_from_ms: int
    schedule: WeeklySchedule | None


class HoursTimeline:
    """A checkpoint's opening hours over time: the change in force at an instant applies;
    before the first change, the first one (what was registered is all that is known)."""

    __slots__ = ("_changes", "_starts")

    def __init__(self, changes: Sequence[HoursChange] = ()) -> None:
        self._changes = sorted(changes, key=lambda c: c.effective_from_ms)
        self._starts = [c.effective_from_ms for c in self._changes]

    def at(self, epoch_ms: int) -> WeeklySchedule | None:
        if not self._changes:
            return None
        i = bisect.bisect_right(self._starts, epoch_ms)
        return self._changes[max(0, i - 1)].schedule

    def registered(self) -> bool:
        """Whether any hours were ever registered (not just "always open")."""
        return any(c.schedule is not None for c in self._changes)


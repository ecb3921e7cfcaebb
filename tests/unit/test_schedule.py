"""Opening hours: both contract forms, the OpenStreetMap weekly subset, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from detectors.schedule import (
    HoursChange,
    HoursTimeline,
    OpeningHoursError,
    WeeklySchedule,
    parse_opening_hours,
)
from vhc_common.timebase import HOUR_MS, to_ms

MON = 0
MIN_DAY = 24 * 60


def utc_hour(local: datetime) -> int:
    """The epoch hour starting at a local (UTC+7) wall time."""
    return (to_ms(local.replace(tzinfo=UTC)) - 7 * HOUR_MS) // HOUR_MS


# 2026-11-23 is a Monday.
def at(day: int, hour: int, minute: int = 0) -> int:
    return utc_hour(datetime(2026, 11, 23 + day, hour, minute))


def test_the_contract_example() -> None:
    s = parse_opening_hours("Mo-Fr 07:00-17:00; Sa 08:00-12:00")
    assert s is not None
    assert s.open_fraction(at(0, 7)) == 1.0
    assert s.open_fraction(at(4, 16)) == 1.0
    assert s.open_fraction(at(4, 17)) == 0.0
    assert s.open_fraction(at(5, 9)) == 1.0 and s.open_fraction(at(5, 12)) == 0.0
    assert s.open_fraction(at(6, 10)) == 0.0  # Sunday: no rule, closed
    assert s.weekly_open_hours() == 5 * 10 + 4


def test_daily_list_form_stays_valid() -> None:
    s = parse_opening_hours(["07:00-11:30", "13:30-17:00"])
    assert s is not None
    assert s.open_fraction(at(6, 11)) == 0.5  # 11:00-11:30 of 11:00-12:00
    assert s.open_fraction(at(2, 12)) == 0.0
    assert s.weekly_open_hours() == 7 * 8


def test_null_is_always_open() -> None:
    assert parse_opening_hours(None) is None


@pytest.mark.parametrize(("text", "open_at", "closed_at"), [
    ("24/7", [(6, 3)], []),
    ("Mo,We,Fr 09:00-10:00", [(0, 9), (2, 9), (4, 9)], [(1, 9), (3, 9)]),
    ("Fr-Mo 10:00-11:00", [(4, 10), (5, 10), (6, 10), (0, 10)], [(1, 10)]),
    ("Mo-Su 08:00-20:00; Su off", [(5, 8)], [(6, 8)]),  # a later rule replaces the day
    ("Mo-Fr 08:00-12:00, 13:00-17:00", [(0, 13)], [(0, 12)]),
    ("Sa 22:00-02:00", [(5, 23), (6, 1)], [(6, 2)]),  # past midnight into Sunday
    ("Su 20:00-26:00", [(6, 23)], [(0, 2)]),  # 26:00 is 02:00; Sunday night into Monday
    ("Mo-Fr", [(0, 3)], [(5, 3)]),  # days without times: all day
    ("Mo-Fr 07:00-17:00;", [(0, 7)], [(5, 7)]),
])
def test_weekly_rules(text: str, open_at: list[tuple[int, int]],
                      closed_at: list[tuple[int, int]]) -> None:
    s = parse_opening_hours(text)
    assert s is not None
    for day, hour in open_at:
        assert s.open_fraction(at(day, hour)) == 1.0, (day, hour)
    for day, hour in closed_at:
        assert s.open_fraction(at(day, hour)) == 0.0, (day, hour)


def test_sunday_night_into_monday_wraps_the_week() -> None:
    s = parse_opening_hours("Su 20:00-26:00")
    assert s is not None
    assert s.intervals == ((0, 120), (6 * MIN_DAY + 20 * 60, 7 * MIN_DAY))
    assert s.open_fraction(at(7, 1)) == 1.0  # next Monday 01:00


@pytest.mark.parametrize(("text", "names"), [
    ("Mo-Fr 7:00-17:00", "rule 1 ('Mo-Fr 7:00-17:00'): '7:00-17:00' is not a time span"),
    ("Mo-Fr 07:00-17:00; PH off", "rule 2 ('PH off'): 'PH' is not a day selector"),
    ("Jan-Mar Mo 08:00-12:00", "'Jan-Mar' is not a day selector"),
    ("Mo-Xx 08:00-09:00", "'Xx' is not a day"),
    ("Mo 25:00-26:00", "'25:00-26:00' has an impossible time"),
    ("Mo 08:00-08:00", "'08:00-08:00' is empty"),
    ("Mo 08:00-12:00 off", "'off' takes no times"),
    ("; Mo 08:00-12:00", "rule 1 is empty"),
    ("   ", "opening hours are empty"),
])
def test_errors_name_the_part_that_is_wrong(text: str, names: str) -> None:
    with pytest.raises(OpeningHoursError) as err:
        parse_opening_hours(text)
    assert names in str(err.value)


@pytest.mark.parametrize(("hours", "names"), [
    (["7:00-11:00"], "interval 1 ('7:00-11:00') is not HH:MM-HH:MM"),
    (["07:00-11:00", "11:00-07:00"], "interval 2 ('11:00-07:00') must end after it starts"),
    (["07:00-24:30"], "interval 1 ('07:00-24:30') must end after it starts, by 24:00"),
])
def test_daily_list_errors(hours: list[str], names: str) -> None:
    with pytest.raises(OpeningHoursError, match="interval"):
        parse_opening_hours(hours)
    with pytest.raises(OpeningHoursError) as err:
        parse_opening_hours(hours)
    assert names in str(err.value)


def test_hours_in_force_at_a_time() -> None:
    office = parse_opening_hours("Mo-Fr 07:00-17:00")
    weekly = WeeklySchedule(((0, 7 * MIN_DAY),))
    change = to_ms(datetime(2026, 11, 25, tzinfo=UTC))
    timeline = HoursTimeline([HoursChange(change, weekly), HoursChange(0, office)])
    assert timeline.at(change - 1) is office
    assert timeline.at(change) is weekly
    assert HoursTimeline([HoursChange(change, office)]).at(0) is office  # before: the first
    assert HoursTimeline().at(change) is None
    assert timeline.registered() and not HoursTimeline([HoursChange(0, None)]).registered()

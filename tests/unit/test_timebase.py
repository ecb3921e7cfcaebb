"""Time units: exact epoch milliseconds and local (UTC+7) calendar positions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vhc_common.timebase import (
    HOUR_MS,
    local_day_of_hour,
    local_hour_of_day,
    local_hour_of_week,
    local_weekday,
    ms_to_datetime,
    to_ms,
)


def test_to_ms_is_exact_where_float_seconds_round_down() -> None:
    # 1.001 s as a float is 1.00099999...; int(ts * 1000) gave 1000.
    moment = datetime(1970, 1, 1, 0, 0, 1, 1000, tzinfo=UTC)
    assert int(moment.timestamp() * 1000) == 1000
    assert to_ms(moment) == 1001


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=7)),
                                               timezone(-timedelta(hours=3, minutes=30))])))
def test_to_ms_is_the_floor_of_the_milliseconds_since_the_epoch(moment: datetime) -> None:
    assert to_ms(moment) == (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1)


def test_to_ms_honours_the_offset_and_round_trips() -> None:
    local = datetime(2026, 11, 26, 7, 30, tzinfo=timezone(timedelta(hours=7)))
    assert to_ms(local) == to_ms(datetime(2026, 11, 26, 0, 30, tzinfo=UTC))
    assert ms_to_datetime(to_ms(local)) == local


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_ms(datetime(2026, 11, 26))


def test_local_calendar_of_an_hour() -> None:
    # 2026-11-26 is a Thursday; 00:00 UTC is 07:00 local.
    hour = to_ms(datetime(2026, 11, 26, 0, 0, tzinfo=UTC)) // HOUR_MS
    assert local_hour_of_day(hour) == 7
    assert local_weekday(hour) == 3
    assert local_hour_of_week(hour) == 3 * 24 + 7
    # 17:00 UTC on Sunday is Monday 00:00 local: hour of week 0, a new local day.
    sunday = to_ms(datetime(2026, 11, 29, 17, 0, tzinfo=UTC)) // HOUR_MS
    assert local_hour_of_week(sunday) == 0
    assert local_day_of_hour(sunday) == local_day_of_hour(sunday - 1) + 1

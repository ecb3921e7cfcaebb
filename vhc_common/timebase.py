"""Time units and conversions shared by every part of vhc-watch (the one place they live).

Event time is epoch milliseconds (``int``). Hours and days are counted from the epoch:
``hour = ms // HOUR_MS``. *Local* time is Vietnam's, a fixed UTC+7 (no daylight saving),
which opening hours, days of the week and daily reports use.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = [
    "DAY_H",
    "DAY_MS",
    "HOUR_MS",
    "LOCAL_OFFSET",
    "LOCAL_UTC_OFFSET_MIN",
    "MINUTE_MS",
    "WEEK_H",
    "hour_of",
    "local_day_of_hour",
    "local_hour_of_day",
    "local_hour_of_week",
    "local_weekday",
    "ms_to_datetime",
    "to_ms",
]

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
DAY_H = 24
WEEK_H = 168
#: Vietnam (Indochina Time), UTC+7 all year.
LOCAL_UTC_OFFSET_MIN = 7 * 60
#: The same, as a timedelta (local dates: ``(utc_datetime + LOCAL_OFFSET).date()``).
LOCAL_OFFSET = timedelta(minutes=LOCAL_UTC_OFFSET_MIN)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: 1970-01-01 was a Thursday: weekday 3 with Monday = 0.
_EPOCH_WEEKDAY = 3


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, exactly (no float rounding)."""
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime has no instant: {moment.isoformat()}")
    # The difference's integer parts: as exact as ``// timedelta(milliseconds=1)`` (a
    # timedelta keeps days signed, seconds and microseconds non-negative: a floor) and
    # faster; it runs several times a declaration in the worker.
    since = moment - _EPOCH
    return since.days * 86_400_000 + since.seconds * 1000 + since.microseconds // 1000


def ms_to_datetime(epoch_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=epoch_ms)


def hour_of(epoch_ms: int) -> int:
    return epoch_ms // HOUR_MS


def _local_hour(hour: int, utc_offset_min: int) -> int:
    if utc_offset_min % 60:
        raise ValueError(f"utc_offset_min must be whole hours, got {utc_offset_min}")
    return hour + utc_offset_min // 60


def local_hour_of_day(hour: int, utc_offset_min: int = LOCAL_UTC_OFFSET_MIN) -> int:
    """0..23: the local clock hour an epoch hour starts at."""
    return _local_hour(hour, utc_offset_min) % DAY_H


def local_day_of_hour(hour: int, utc_offset_min: int = LOCAL_UTC_OFFSET_MIN) -> int:
    """The local day (days since 1970-01-01 local) an epoch hour falls in."""
    return _local_hour(hour, utc_offset_min) // DAY_H


def local_weekday(hour: int, utc_offset_min: int = LOCAL_UTC_OFFSET_MIN) -> int:
    """0 (Monday) .. 6 (Sunday) of the local day an epoch hour falls in."""
    return (local_day_of_hour(hour, utc_offset_min) + _EPOCH_WEEKDAY) % 7


def local_hour_of_week(hour: int, utc_offset_min: int = LOCAL_UTC_OFFSET_MIN) -> int:
    """0..167: Monday 00:00-01:00 local is 0, Sunday 23:00-24:00 is 167."""
    return local_weekday(hour, utc_offset_min) * DAY_H + local_hour_of_day(hour, utc_offset_min)

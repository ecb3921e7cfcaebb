"""Exact, idempotent event-time counts (detectors.counts)."""

from __future__ import annotations

import uuid
from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.counts import (
    HOUR_MS,
    AddOutcome,
    CountedDeclaration,
    HourBucket,
    WindowCounts,
    declaration_key,
    hour_of,
    hours_overlapping,
    window_counts,
)
from detectors.errors import StateDecodeError
from detectors.flags import DeclarationFlags as F

MIN = 60_000
END = 1_000 * HOUR_MS + 30 * MIN  # 10:30 into hour 1000


def buckets_of(items: list[CountedDeclaration]) -> list[HourBucket]:
    buckets: dict[int, HourBucket] = {}
    for item in items:
        hour = hour_of(item.scanned_at_ms)
        buckets.setdefault(hour, HourBucket(hour)).add(item)
    return list(buckets.values())


def item(n: int, at_ms: int, flags: F = F.NONE) -> CountedDeclaration:
    return CountedDeclaration(key=n, scanned_at_ms=at_ms, flags=flags)


def test_window_is_open_at_its_start_and_counts_up_to_now() -> None:
    # Window (END - 5 min, END]: 5 min ago exactly is out, 1 ms later is in.
    items = [item(1, END - 5 * MIN), item(2, END - 5 * MIN + 1), item(3, END)]
    assert window_counts(buckets_of(items), end_ms=END, window_ms=5 * MIN).total == 2


def test_declarations_slightly_in_the_future_count_as_now() -> None:
    items = [item(1, END + 30_000)]  # front-end clock 30 s ahead
    assert window_counts(buckets_of(items), end_ms=END, window_ms=5 * MIN).total == 1


def test_hand_computed_windows() -> None:
    # 3 in the last 5 min (one symptomatic+fever, one F0), 2 more within the hour (one F1,
    # one traveller), 1 more within the day (symptomatic), 1 older than a day.
    items = [
        item(1, END - 1 * MIN, F.SYMPTOMATIC | F.FEVER),
        item(2, END - 2 * MIN, F.CONTACT_F0),
        item(3, END - 4 * MIN),
        item(4, END - 20 * MIN, F.CONTACT_F1),
        item(5, END - 59 * MIN, F.TRAVEL_FROM_OUTBREAK),
        item(6, END - 23 * HOUR_MS, F.SYMPTOMATIC),
        item(7, END - 25 * HOUR_MS, F.SYMPTOMATIC | F.FEVER),
    ]
    buckets = buckets_of(items)
    assert window_counts(buckets, end_ms=END, window_ms=5 * MIN) == WindowCounts(
        total=3, symptomatic=1, fever=1, contact_f0=1, contact_f1=0, travel_from_outbreak=0)
    assert window_counts(buckets, end_ms=END, window_ms=HOUR_MS) == WindowCounts(
        total=5, symptomatic=1, fever=1, contact_f0=1, contact_f1=1, travel_from_outbreak=1)
    assert window_counts(buckets, end_ms=END, window_ms=24 * HOUR_MS) == WindowCounts(
        total=6, symptomatic=2, fever=1, contact_f0=1, contact_f1=1, travel_from_outbreak=1)


def test_empty_state_counts_nothing() -> None:
    assert window_counts([], end_ms=END, window_ms=HOUR_MS) == WindowCounts()


def test_adding_twice_counts_once() -> None:
    bucket = HourBucket(hour_of(END))
    assert bucket.add(item(7, END)) is AddOutcome.COUNTED
    assert bucket.add(item(7, END)) is AddOutcome.REPLAYED  # the same record (offset) again
    again = CountedDeclaration(key=7, scanned_at_ms=END, flags=F.NONE, offset=99)
    assert bucket.add(again) is AddOutcome.DUPLICATE  # another record of it
    assert len(bucket) == 1
    assert len(bucket) == 1


def test_a_declaration_must_belong_to_the_bucket_hour() -> None:
    with pytest.raises(ValueError, match="not in hour"):
        HourBucket(hour_of(END)).add(item(1, END - HOUR_MS))


def test_encode_decode_roundtrip_and_corruption() -> None:
    bucket = HourBucket(hour_of(END))
    for n in range(50):
        bucket.add(item(n + 2**63, END - n * 1000, F(n % 64)))
    again = HourBucket.decode(bucket.hour, bucket.encode())
    assert again.entries == bucket.entries
    assert HourBucket.decode(5, None).entries == {}
    with pytest.raises(StateDecodeError, match="version"):
        HourBucket.decode(5, b"\x01" + bucket.encode()[1:])  # the old version 1
    with pytest.raises(StateDecodeError):
        HourBucket.decode(5, bucket.encode()[:-1])


def test_declaration_key_is_stable_64_bit_and_spreads() -> None:
    u = uuid.UUID("6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab")
    assert declaration_key(u) == declaration_key(uuid.UUID(str(u)))
    assert 0 <= declaration_key(u) < 2**64
    # Sequential UUIDs (same prefix) still get distinct keys.
    keys = {declaration_key(uuid.UUID(int=i)) for i in range(10_000)}
    assert len(keys) == 10_000


def test_hours_overlapping_covers_the_window_and_one_hour_ahead() -> None:
    hours = hours_overlapping(end_ms=END, window_ms=24 * HOUR_MS)
    assert hours.start == hour_of(END - 24 * HOUR_MS) == 976
    assert hours.stop - 1 == hour_of(END) + 1 == 1001
    with pytest.raises(ValueError, match="got 0"):
        hours_overlapping(end_ms=END, window_ms=0)


# One declaration id is one declaration: keys are unique (a replay repeats the whole item).
events = st.lists(
    st.tuples(st.integers(0, 2**64 - 1), st.integers(END - 30 * HOUR_MS, END + MIN),
              st.integers(0, 63)),
    max_size=60,
    unique_by=lambda e: e[0],
)
windows = st.sampled_from([5 * MIN, HOUR_MS, 24 * HOUR_MS])


@given(events, windows, st.randoms())
def test_order_of_arrival_changes_nothing(raw: list[tuple[int, int, int]], window_ms: int,
                                          rnd: object) -> None:
    items = [item(k, t, F(f)) for k, t, f in raw]
    shuffled = list(items)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert window_counts(buckets_of(items), end_ms=END, window_ms=window_ms) == window_counts(
        buckets_of(shuffled), end_ms=END, window_ms=window_ms)


@given(events, windows)
def test_replaying_everything_changes_nothing(raw: list[tuple[int, int, int]],
                                              window_ms: int) -> None:
    items = [item(k, t, F(f)) for k, t, f in raw]
    once = window_counts(buckets_of(items), end_ms=END, window_ms=window_ms)
    twice = window_counts(buckets_of(items + items[::-1]), end_ms=END, window_ms=window_ms)
    assert once == twice


@given(events, st.integers(END - 30 * HOUR_MS, END), st.integers(0, 63))
def test_adding_a_declaration_never_lowers_a_count(raw: list[tuple[int, int, int]],
                                                   at_ms: int, flags: int) -> None:
    items = [item(k, t, F(f)) for k, t, f in raw]
    extra = item(2**64 - 1 - len(items), at_ms, F(flags))  # a key not among the others
    if any(i.key == extra.key for i in items):
        return
    for window_ms in (5 * MIN, HOUR_MS, 24 * HOUR_MS):
        before = window_counts(buckets_of(items), end_ms=END, window_ms=window_ms)
        after = window_counts(buckets_of([*items, extra]), end_ms=END, window_ms=window_ms)
        assert all(getattr(after, f.name) >= getattr(before, f.name)
                   for f in fields(WindowCounts))
        assert after.total - before.total == (at_ms > END - window_ms)


@given(events)
def test_windows_are_nested(raw: list[tuple[int, int, int]]) -> None:
    buckets = buckets_of([item(k, t, F(f)) for k, t, f in raw])
    small, mid, big = (window_counts(buckets, end_ms=END, window_ms=w)
                       for w in (5 * MIN, HOUR_MS, 24 * HOUR_MS))
    assert small.total <= mid.total <= big.total

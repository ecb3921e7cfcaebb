"""The hourly series: new symptomatic declarants once a day, absolute puts, compact encoding."""

from __future__ import annotations

import json
import random

from hypothesis import given
from hypothesis import strategies as st

from detectors.series import NEW_CASE_AFTER_MS, QUARTER_MS, HourlySeries
from vhc_common.timebase import HOUR_MS

H0 = 490_000


def test_a_sick_person_counts_once_a_day() -> None:
    s = HourlySeries()
    t = H0 * HOUR_MS
    assert s.observe(t, symptomatic=True, person_key="a") is True
    assert s.observe(t + HOUR_MS, symptomatic=True, person_key="a") is False  # same day
    assert s.observe(t + 2 * HOUR_MS, symptomatic=False, person_key="a") is False
    # 24 h after the last symptomatic declaration, not the first: still the same illness
    assert s.observe(t + NEW_CASE_AFTER_MS, symptomatic=True, person_key="a") is False
    assert s.observe(t + 2 * NEW_CASE_AFTER_MS + HOUR_MS, symptomatic=True,
                     person_key="a") is True
    assert s.at(H0) == (1, 1) and s.at(H0 + 1) == (1, 0)
    assert s.window(H0, H0 + 49) == (5, 2)
    assert s.first_hour == H0


def test_quarters_follow_declarations() -> None:
    s = HourlySeries()
    for minute in (1, 2, 16, 59):
        s.observe(H0 * HOUR_MS + minute * 60_000, symptomatic=False, person_key="x")
    q = H0 * HOUR_MS // QUARTER_MS
    assert [s.quarter(q + i) for i in range(4)] == [2, 1, 0, 1]


def test_put_is_absolute() -> None:
    s = HourlySeries()
    s.put(H0, total=10, symptomatic=2)
    s.put(H0, total=10, symptomatic=2)
    assert s.at(H0) == (10, 2)
    s.put(H0, total=0, symptomatic=0)
    assert s.at(H0) == (0, 0) and s.first_hour == H0


def test_prune_drops_old_hours_and_people() -> None:
    s = HourlySeries()
    s.observe(H0 * HOUR_MS, symptomatic=True, person_key="old")
    s.observe((H0 + 100) * HOUR_MS, symptomatic=True, person_key="new")
    s.prune(H0 + 50, now_ms=(H0 + 100) * HOUR_MS)
    assert s.at(H0) == (0, 0) and s.at(H0 + 100) == (1, 1)
    assert set(s.sick) == {"new"}
    assert all(q >= (H0 + 50) * 4 for q in s.quarters)


@given(st.lists(st.tuples(st.integers(0, 600), st.integers(0, 3599_999), st.booleans(),
                          st.sampled_from("abcd")), max_size=60))
def test_encoding_round_trips(events: list[tuple[int, int, bool, str]]) -> None:
    s = HourlySeries()
    for hour, ms, sick, who in events:
        s.observe((H0 + hour) * HOUR_MS + ms, symptomatic=sick, person_key=who)
    back = HourlySeries.from_json(s.to_json())
    assert back == s


def test_json_text_is_kept_until_the_series_changes() -> None:
    """After every kind of change the kept text is the series' JSON as it is now."""
    rng = random.Random(7)
    s = HourlySeries()
    base = 490_000 * HOUR_MS
    changes = [
        lambda: s.observe(base + rng.randrange(48 * HOUR_MS), symptomatic=rng.random() < 0.3,
                          person_key=f"{rng.randrange(20):032x}"),
        lambda: s.add(base // HOUR_MS + rng.randrange(48), total=2, symptomatic=1),
        lambda: s.put(base // HOUR_MS + rng.randrange(48), total=rng.randrange(3),
                      symptomatic=0),
        lambda: s.prune(base // HOUR_MS + rng.randrange(48), now_ms=base + 40 * HOUR_MS),
    ]
    for _ in range(300):
        rng.choice(changes)()
        assert s.json_text() == json.dumps(s.to_json(), separators=(",", ":"))
        assert s.json_text() is s.json_text()  # kept, not encoded again
    assert HourlySeries.from_json(json.loads(s.json_text())) == s

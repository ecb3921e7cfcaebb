"""Per-declaration facts (detectors.flags)."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.flags import DeclarationFlags as F
from detectors.flags import FlagPolicy, flags_of, is_symptomatic
from tests.factories import declaration_event

POLICY = FlagPolicy()


@pytest.mark.parametrize(
    ("fields", "areas", "expected"),
    [
        ({}, set(), F.NONE),
        ({"temperature_c": 37.4}, set(), F.NONE),
        ({"temperature_c": 37.5}, set(), F.FEVER | F.SYMPTOMATIC),  # at the threshold
        ({"symptoms": ("fever",), "temperature_c": 36.5}, set(), F.FEVER | F.SYMPTOMATIC),
        ({"symptoms": ("cough",)}, set(), F.SYMPTOMATIC),
        ({"contact": "f0"}, set(), F.CONTACT_F0),
        ({"contact": "f1", "symptoms": ("fatigue",)}, set(), F.CONTACT_F1 | F.SYMPTOMATIC),
        ({"contact": "suspected"}, set(), F.CONTACT_SUSPECTED),
        ({"travel_from": ("79", "01")}, {"01"}, F.TRAVEL_FROM_OUTBREAK),
        ({"travel_from": ("79",)}, {"01"}, F.NONE),
    ],
)
def test_flags(fields: dict[str, Any], areas: set[str], expected: F) -> None:
    assert flags_of(declaration_event(**fields), outbreak_areas=areas, policy=POLICY) == expected


def test_threshold_is_configurable_and_checked() -> None:
    event = declaration_event(temperature_c=37.6)
    assert flags_of(event, outbreak_areas=(), policy=FlagPolicy(fever_threshold_c=38.0)) == F.NONE
    with pytest.raises(ValueError, match=r"got 34\.0"):
        FlagPolicy(fever_threshold_c=34.0)


def test_is_symptomatic_agrees_with_the_flag_arithmetic() -> None:
    for bits in range(64):  # every combination of the six flags
        flags = F(bits)
        assert is_symptomatic(flags) is bool(flags & F.SYMPTOMATIC)

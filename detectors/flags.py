"""Per-declaration facts: fever, symptoms, contact level, travel from an outbreak area.

*Fever* is a declared ``fever`` or a measured ``temperature_c`` at or above
``fever_threshold_c`` (default 37.5 °C). *Symptomatic* is at least one symptom, fever
(either way) included. These definitions are the contract's and are shared by the live
counts and the alerting detectors.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import IntFlag

from vhc_common.schemas import Contact, DeclarationEvent, Symptom

__all__ = ["DEFAULT_FEVER_THRESHOLD_C", "DeclarationFlags", "FlagPolicy", "flags_of",
           "is_symptomatic"]

DEFAULT_FEVER_THRESHOLD_C = 37.5


class DeclarationFlags(IntFlag):
    """What a declaration shows, as bits (stable values: they are stored)."""

    NONE = 0
    SYMPTOMATIC = 1
    FEVER = 2
    CONTACT_F0 = 4
    CONTACT_F1 = 8
    TRAVEL_FROM_OUTBREAK = 16
    CONTACT_SUSPECTED = 32


_SYMPTOMATIC = int(DeclarationFlags.SYMPTOMATIC)


def is_symptomatic(flags: DeclarationFlags) -> bool:
    """``flags & SYMPTOMATIC`` on the plain int: IntFlag's ``&`` runs ``enum``'s Python
    code and builds a new flag (the worker asks once or twice per declaration)."""
    return bool(int(flags) & _SYMPTOMATIC)


@dataclass(frozen=True, slots=True)
class FlagPolicy:
    """Thresholds for the per-declaration facts."""

    fever_threshold_c: float = DEFAULT_FEVER_THRESHOLD_C

    def __post_init__(self) -> None:
        if not 35.0 <= self.fever_threshold_c <= 42.0:
            raise ValueError(
                f"fever_threshold_c must be within 35..42 °C, got {self.fever_threshold_c}"
            )


_CONTACT_FLAG = {
    Contact.NONE: DeclarationFlags.NONE,
    Contact.F0: DeclarationFlags.CONTACT_F0,
    Contact.F1: DeclarationFlags.CONTACT_F1,
    Contact.SUSPECTED: DeclarationFlags.CONTACT_SUSPECTED,
}


def flags_of(
    declaration: DeclarationEvent,
    *,
    outbreak_areas: Collection[str],
    policy: FlagPolicy,
) -> DeclarationFlags:
    """The facts of one declaration, given the outbreak areas in force for it."""
    flags = _CONTACT_FLAG[declaration.contact]
    measured_fever = (
        declaration.temperature_c is not None
        and declaration.temperature_c >= policy.fever_threshold_c
    )
    if measured_fever or Symptom.FEVER in declaration.symptoms:
        flags |= DeclarationFlags.FEVER | DeclarationFlags.SYMPTOMATIC
    if declaration.symptoms:
        flags |= DeclarationFlags.SYMPTOMATIC
    if any(area in outbreak_areas for area in declaration.travel_from):
        flags |= DeclarationFlags.TRAVEL_FROM_OUTBREAK
    return flags

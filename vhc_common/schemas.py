"""Event schemas shared by every part of vhc-watch (API, stream worker, simulator, tests).

Two families live here:

* *inputs* (``DeclarationIn``, ``CheckpointIn``): what front ends and staff send; they carry
  personal data in clear and never leave the ingest process;
* *events* (``DeclarationEvent``, ``CheckpointEvent``): what is published to Kafka; each has
  ``schema_version`` and carries pseudonymous person keys only.

A breaking change to an event means a new ``SCHEMA_VERSION`` and a new topic version
(``declarations.v2``), never a silent change to ``v1``.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from detectors.schedule import OpeningHoursError, parse_opening_hours

__all__ = [
    "AREA_CODE_PATTERN",
    "CHECKPOINT_ID_PATTERN",
    "SCHEMA_VERSION",
    "AlertEvent",
    "AlertKind",
    "AlertStatus",
    "AlertStatusEvent",
    "AreaCode",
    "AuditEvent",
    "CaseEvent",
    "CheckpointEvent",
    "CheckpointId",
    "CheckpointIn",
    "CheckpointKind",
    "Contact",
    "DeclarationEvent",
    "DeclarationIn",
    "Evidence",
    "NamingVerdict",
    "NamingViolation",
    "OpeningHours",
    "OpeningHoursChange",
    "OutbreakAreasEvent",
    "PersonIn",
    "PersonRef",
    "Severity",
    "Summary",
    "Symptom",
    "WardCode",
]

SCHEMA_VERSION: Literal[1] = 1

CHECKPOINT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
AREA_CODE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MAX_TRAVEL_AREAS = 50

CheckpointId = Annotated[str, StringConstraints(pattern=CHECKPOINT_ID_PATTERN)]
AreaCode = Annotated[str, StringConstraints(pattern=AREA_CODE_PATTERN)]
WardCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{5}$")]
PersonKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class Symptom(StrEnum):
    FEVER = "fever"
    COUGH = "cough"
    SHORTNESS_OF_BREATH = "shortness_of_breath"
    SORE_THROAT = "sore_throat"
    LOSS_OF_TASTE_OR_SMELL = "loss_of_taste_or_smell"
    FATIGUE = "fatigue"


class Contact(StrEnum):
    NONE = "none"
    F0 = "f0"
    F1 = "f1"
    SUSPECTED = "suspected"


class CheckpointKind(StrEnum):
    """What kind of place a control point guards (peers are compared within a kind)."""

    OFFICE = "office"
    BUSINESS = "business"
    FACTORY = "factory"
    SUPERMARKET = "supermarket"
    MARKET = "market"
    SHOP = "shop"
    RESTAURANT = "restaurant"
    SCHOOL = "school"
    HOSPITAL = "hospital"
    TRANSPORT = "transport"
    RESIDENTIAL = "residential"
    OTHER = "other"


# ----------------------------------------------------------------------------- inputs

_PHONE_RE = re.compile(r"^(?:\+?84|0)([0-9]{9,10})$")


class PersonIn(BaseModel):
    """The declarant as a front end sends it. Pseudonymised at the edge, never published."""

    model_config = ConfigDict(str_strip_whitespace=True)

    id_number: Annotated[str, StringConstraints(pattern=r"^([0-9]{9}|[0-9]{12})$")] | None = Field(
        default=None, description="CMND (9 digits) or CCCD (12 digits)"
    )
    phone: str | None = Field(
        default=None, description="Vietnamese number: 0xxxxxxxxx or +84xxxxxxxxx"
    )
    full_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2100)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = re.sub(r"[\s.()-]", "", value)
        match = _PHONE_RE.match(digits)
        if match is None:
            raise ValueError("must be a Vietnamese phone number: 0 or +84 then 9 or 10 digits")
        return "0" + match.group(1)  # one canonical form, so both spellings key alike

    @model_validator(mode="after")
    def _identified(self) -> PersonIn:
        if self.id_number is None and self.phone is None:
            raise ValueError("give id_number or phone (or both)")
        return self


class DeclarationIn(BaseModel):
    """One health declaration as submitted (``POST /v1/declarations``).

    Time rules that need the clock (future skew, retention) are checked by the API, which
    owns the clock; everything else is checked here.
    """

    declaration_id: UUID
    checkpoint_id: CheckpointId
    scanned_at: AwareDatetime
    person: PersonIn
    temperature_c: float | None = Field(default=None, ge=30, le=45)
    symptoms: list[Symptom] = Field(default_factory=list, max_length=len(Symptom))
    contact: Contact = Contact.NONE
    travel_from: list[AreaCode] = Field(default_factory=list, max_length=MAX_TRAVEL_AREAS)

    @field_validator("symptoms")
    @classmethod
    def _unique_symptoms(cls, value: list[Symptom]) -> list[Symptom]:
        return sorted(set(value))


#: Opening hours as given: the daily list (``["07:00-11:30", "13:30-17:00"]``) or an
#: OpenStreetMap string (``"Mo-Fr 07:00-17:00; Sa 08:00-12:00"``); ``None``: always open.
OpeningHours = list[str] | str | None


class CheckpointIn(BaseModel):
    """A control point as staff register it (``POST /v1/checkpoints``)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    checkpoint_id: CheckpointId | None = None
    name: Annotated[str, StringConstraints(min_length=3, max_length=200)]
    kind: CheckpointKind
    ward_code: WardCode
    address: Annotated[str, StringConstraints(min_length=3, max_length=300)]
    opening_hours: list[Annotated[str, StringConstraints(max_length=11)]] | Annotated[
        str, StringConstraints(min_length=1, max_length=500)] | None = Field(
        default=None,
        description="Local time (UTC+7). Either daily intervals, e.g. "
        '["07:00-11:30", "13:30-17:00"] (at most 8), or OpenStreetMap opening_hours by day of '
        'the week, e.g. "Mo-Fr 07:00-17:00; Sa 08:00-12:00" (days Mo..Su, ranges and lists, '
        '"off", "24/7"); null means always open.',
    )

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, value: OpeningHours) -> OpeningHours:
        if isinstance(value, list) and len(value) > 8:
            raise ValueError(f"at most 8 daily intervals, got {len(value)}")
        try:
            parse_opening_hours(value)
        except OpeningHoursError as exc:
            raise ValueError(str(exc)) from exc
        return value


# ----------------------------------------------------------------------------- events


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PersonRef(_Event):
    """Pseudonymous keys for a declarant (keyed HMAC-SHA256, see ``vhc_common.pseudonym``).

    ``key`` identifies the person for counting distinct people: the id-number key when an id
    number was given, else the phone key. Both partial keys travel so that a confirmed case
    found by either identifier can be matched.
    """

    key: PersonKey
    id_key: PersonKey | None = None
    phone_key: PersonKey | None = None
    birth_year: int | None = None


class DeclarationEvent(_Event):
    """A validated, pseudonymised declaration on ``declarations.v1`` (key: checkpoint id)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    declaration_id: UUID
    checkpoint_id: CheckpointId
    scanned_at: AwareDatetime
    received_at: AwareDatetime
    person: PersonRef
    temperature_c: float | None = None
    symptoms: tuple[Symptom, ...] = ()
    contact: Contact = Contact.NONE
    travel_from: tuple[AreaCode, ...] = ()


class OpeningHoursChange(_Event):
    """Opening hours in force from ``effective_from`` on (as given: list, string or null)."""

    effective_from: AwareDatetime
    opening_hours: tuple[str, ...] | str | None


class NamingViolation(_Event):
    """One rule of the naming convention that a name breaks (``detectors.naming``)."""

    rule: str
    message: str
    message_vi: str


class NamingVerdict(_Event):
    """A name judged against the convention: does it conform, what breaks it, and a
    conforming name to use instead."""

    conforms: bool
    violations: tuple[NamingViolation, ...] = ()
    suggestion: str


class CheckpointEvent(_Event):
    """A registered control point on the compacted ``checkpoints.v1`` (key: checkpoint id).

    ``opening_hours_history`` holds every change of the opening hours within the retention
    period (and the one in force before it), oldest first, so that declarations are judged
    by the hours in force when they were scanned, as outbreak areas are. Compaction keeps
    only the latest record of a checkpoint, which carries the whole history.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    checkpoint_id: CheckpointId
    name: str
    kind: CheckpointKind
    ward_code: WardCode
    ward_name: str
    province_code: str
    province_name: str
    address: str
    opening_hours: tuple[str, ...] | str | None = None
    opening_hours_history: tuple[OpeningHoursChange, ...] = ()
    created_at: datetime
    updated_at: datetime
    #: The name's verdict when it was stored (``None`` on records from before v1.1).
    naming: NamingVerdict | None = None
    #: The staff credential label that made this version.
    updated_by: str | None = None


class AlertKind(StrEnum):
    SYMPTOMATIC_DECLARATION = "symptomatic_declaration"
    FEVER = "fever"
    CLOSE_CONTACT = "close_contact"
    TRAVEL_FROM_OUTBREAK_AREA = "travel_from_outbreak_area"
    SYMPTOM_CLUSTER = "symptom_cluster"
    SYMPTOM_ABERRATION = "symptom_aberration"
    VOLUME_SURGE = "volume_surge"
    CHECKPOINT_SILENT = "checkpoint_silent"
    EXPOSURE = "exposure"
    NAMING_VIOLATION = "naming_violation"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Summary(_Event):
    """A human-readable sentence in Vietnamese (for staff) and English."""

    vi: str
    en: str


def _empty(value: object) -> bool:
    return value is None or value == ()


class Evidence(_Event):
    """The numbers behind an alert. ``statistics`` holds method-specific extra values
    (for example each EARS statistic), by name."""

    method: str
    observed: float | None = None
    expected: float | None = None
    threshold: float | None = None
    declaration_ids: tuple[UUID, ...] = ()
    flags: tuple[AlertKind, ...] = ()
    exposed_count: int | None = None
    person_keys: tuple[PersonKey, ...] = ()
    statistics: dict[str, float] = Field(default_factory=dict)
    #: Baseline alerts: the recent series (oldest first, one value per ``step_s``) and the
    #: expected value and alarm threshold at each point, for a chart in the console.
    #: (Left out of the JSON when empty: per-declaration alerts stay as small as in v1.0,
    #: and a backlog's outbox record stays under Kafka's 1 MiB message limit.)
    series: tuple[float, ...] = Field(default=(), exclude_if=_empty)
    series_expected: tuple[float, ...] = Field(default=(), exclude_if=_empty)
    series_threshold: tuple[float, ...] = Field(default=(), exclude_if=_empty)
    step_s: int | None = Field(default=None, exclude_if=_empty)
    #: Naming alerts: the rules broken and the suggested name.
    violations: tuple[str, ...] = Field(default=(), exclude_if=_empty)
    suggestion: str | None = Field(default=None, exclude_if=_empty)


class AlertEvent(_Event):
    """A detection on ``alerts.v1`` (key: checkpoint id where one applies).

    ``alert_id`` is deterministic (derived from the kind and the condition), so a replay
    re-emits the same id and consumers store it once. ``detected_at`` is event time: the
    stream time at which the detector fired. The lifecycle (acknowledged, resolved) is
    kept by the API, not in this event.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    alert_id: Annotated[str, StringConstraints(pattern=r"^[a-z_]+-[0-9a-f]{24}$")]
    kind: AlertKind
    severity: Severity
    checkpoint_id: CheckpointId | None = None
    ward_code: WardCode | None = None
    detected_at: AwareDatetime
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    summary: Summary
    evidence: Evidence


class OutbreakAreasEvent(_Event):
    """The whole outbreak-area list from ``effective_from`` on (``outbreak-areas.v1``,
    compacted, key: ``effective_from`` in epoch ms, so every change is kept)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    areas: tuple[AreaCode, ...]
    effective_from: AwareDatetime
    updated_by: str


class CaseEvent(_Event):
    """A confirmed case reported by staff (``cases.v1``, key: the person key)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    case_id: Annotated[str, StringConstraints(pattern=r"^case-[0-9a-f]{24}$")]
    person: PersonRef
    confirmed_at: AwareDatetime
    reported_at: AwareDatetime
    lookback_s: int
    window_s: int
    reported_by: str


class AlertStatusEvent(_Event):
    """An alert's lifecycle after a staff change (``alert-status.v1``, key: alert id); the
    last record of an alert holds its whole history, so the view can be rebuilt."""

    schema_version: Literal[1] = SCHEMA_VERSION
    alert_id: str
    status: AlertStatus
    history: tuple[dict[str, str | None], ...]


class AuditEvent(_Event):
    """A staff action (``audit.v1``, key: the target's id): who did what to what, when.

    ``action`` is one of ``alert.acknowledge``, ``alert.resolve``, ``checkpoint.create``,
    ``checkpoint.update``, ``outbreak_areas.set``, ``case.report``; ``by`` is the label of
    the staff credential (never the credential itself).
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    audit_id: Annotated[str, StringConstraints(pattern=r"^audit-[0-9a-f]{24}$")]
    action: str
    target_type: Literal["alert", "checkpoint", "outbreak_areas", "case"]
    target_id: str
    by: str
    at: AwareDatetime
    note: str | None = None
    details: dict[str, str] = Field(default_factory=dict)

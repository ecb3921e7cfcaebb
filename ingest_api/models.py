"""Response models of the HTTP API (request models are the shared schemas)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from vhc_common.schemas import (
    AlertEvent,
    AlertStatus,
    AreaCode,
    CheckpointEvent,
    PersonIn,
)

__all__ = [
    "AlertOut",
    "AlertPage",
    "BatchIn",
    "BatchItemOut",
    "BatchOut",
    "CaseIn",
    "CaseOut",
    "CheckpointOut",
    "CheckpointPage",
    "DeclarationOut",
    "NoteIn",
    "OutbreakAreasIn",
    "OutbreakAreasOut",
    "StatsOut",
    "StatusChange",
    "WindowStats",
]


class DeclarationOut(BaseModel):
    declaration_id: str
    status: Literal["accepted", "duplicate"]


class BatchIn(BaseModel):
    declarations: list[dict[str, Any]] = Field(
        min_length=1,
        description="Up to `batch_max_items` declarations, each as for POST /v1/declarations; "
        "each is validated on its own.",
    )


class BatchItemOut(BaseModel):
    index: int
    declaration_id: str | None
    status: Literal["accepted", "duplicate", "invalid", "forbidden", "unavailable",
                    "in_progress"]
    errors: list[dict[str, Any]] = Field(default_factory=list)


class BatchOut(BaseModel):
    items: list[BatchItemOut]
    accepted: int
    duplicate: int
    invalid: int
    forbidden: int = Field(0, description="checkpoints outside the key's area (v1.1)")
    unavailable: int


class CheckpointOut(CheckpointEvent):
    """A registered checkpoint as stored."""


class CheckpointPage(BaseModel):
    items: list[CheckpointOut]
    next_cursor: str | None


class WindowStats(BaseModel):
    total: int
    symptomatic: int
    fever: int
    contact_f0: int
    contact_f1: int
    travel_from_outbreak: int


class StatsOut(BaseModel):
    checkpoint_id: str
    last_declaration_at: datetime | None
    as_of: datetime = Field(description="the end of every window (now)")
    windows: dict[Literal["5m", "1h", "24h"], WindowStats]


class StatusChange(BaseModel):
    status: AlertStatus
    note: str | None
    by: str
    at: datetime


class AlertOut(AlertEvent):
    """An alert as served: the detection plus its lifecycle."""

    status: AlertStatus
    history: list[StatusChange] = Field(default_factory=list)


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class NoteIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class OutbreakAreasIn(BaseModel):
    areas: list[AreaCode] = Field(max_length=5000)
    effective_from: AwareDatetime | None = Field(
        default=None,
        description="when the list takes effect (default now); may be in the past, within "
        "the retention period, for a list announced earlier or a replay of recorded traffic: "
        "declarations scanned from then on are judged against it (those already processed "
        "are not judged again)")


class OutbreakAreasOut(BaseModel):
    areas: list[str]
    effective_from: datetime | None


class CasePersonIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    id_number: str | None = Field(default=None, pattern=r"^([0-9]{9}|[0-9]{12})$")
    phone: str | None = None

    def as_person(self) -> PersonIn:
        return PersonIn(id_number=self.id_number, phone=self.phone)


class CaseIn(BaseModel):
    person: CasePersonIn
    confirmed_at: AwareDatetime

    @field_validator("confirmed_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        # An offset can push a valid local time out of datetime's range in UTC (year 1 at
        # +14:00): refuse it here, before anything is published or computed from it.
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("is out of range once converted to UTC") from exc


class CaseOut(BaseModel):
    case_id: str
    confirmed_at: datetime
    visits: int = Field(description="check-ins of the case found in the look-back")
    exposed: int = Field(description="distinct other people at those check-ins, summed over "
                                     "visits")
    alert_ids: list[str] = Field(description="the exposure alerts raised, one per visit; "
                                             "where the person was is in the alerts, which "
                                             "each staff token sees only in its area")

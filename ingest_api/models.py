"""Response models of the HTTP API (request models are the shared schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from vhc_common.schemas import CheckpointEvent

__all__ = [
    "BatchIn",
    "BatchItemOut",
    "BatchOut",
    "CheckpointOut",
    "CheckpointPage",
    "DeclarationOut",
    "StatsOut",
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
    status: Literal["accepted", "duplicate", "invalid", "unavailable", "in_progress"]
    errors: list[dict[str, Any]] = Field(default_factory=list)


class BatchOut(BaseModel):
    items: list[BatchItemOut]
    accepted: int
    duplicate: int
    invalid: int
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

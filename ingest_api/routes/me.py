"""Who the caller is: the role and area of a staff token (the console adapts to them)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ingest_api.deps import Staff

router = APIRouter(prefix="/v1/me", tags=["access"])


class Me(BaseModel):
    label: str = Field(description="the token's non-secret label, as audit records show it")
    role: str = Field(description="viewer, responder, case_officer or admin")
    area: str = Field(description="a ward code, a province code, or * (everywhere)")


@router.get("", response_model=Me)
async def me(who: Staff) -> Me:
    """The role and area of this staff token (v1.1)."""
    return Me(label=who.label, role=who.role.label, area=str(who.area))

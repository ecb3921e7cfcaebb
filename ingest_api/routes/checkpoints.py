"""The checkpoint registry (staff)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from ingest_api.deps import ServicesDep, Staff
from ingest_api.models import CheckpointOut, CheckpointPage
from ingest_api.publisher import Message
from vhc_common.schemas import CheckpointEvent, CheckpointIn, OpeningHoursChange
from vhc_common.topics import CHECKPOINTS
from vhc_common.wards import UnknownWardError, lookup_ward

router = APIRouter(prefix="/v1/checkpoints", tags=["checkpoints"])


def _hours_history(previous: CheckpointEvent | None, hours: tuple[str, ...] | str | None,
                   now: datetime, retention: timedelta) -> tuple[OpeningHoursChange, ...]:
    """The previous history, with a change at ``now`` if the hours changed; changes that
    no declaration within the retention period can need are dropped."""
    if previous is None:
        return (OpeningHoursChange(effective_from=now, opening_hours=hours),)
    history = list(previous.opening_hours_history) or [
        OpeningHoursChange(effective_from=previous.created_at,
                           opening_hours=previous.opening_hours)]
    if history[-1].opening_hours != hours:
        history.append(OpeningHoursChange(effective_from=now, opening_hours=hours))
    cutoff = now - retention
    in_force = [i for i, c in enumerate(history) if c.effective_from <= cutoff]
    return tuple(history[in_force[-1]:] if in_force else history)


def _event(body: CheckpointIn, checkpoint_id: str, previous: CheckpointEvent | None,
           retention: timedelta) -> CheckpointEvent:
    try:
        ward = lookup_ward(body.ward_code)
    except UnknownWardError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "ward_code"], "msg": str(exc), "type": "unknown_ward"}]) from exc
    now = datetime.now(UTC)
    hours = (tuple(body.opening_hours) if isinstance(body.opening_hours, list)
             else body.opening_hours)
    return CheckpointEvent(
        checkpoint_id=checkpoint_id,
        name=body.name,
        kind=body.kind,
        ward_code=ward.code,
        ward_name=ward.name,
        province_code=ward.province_code,
        province_name=ward.province_name,
        address=body.address,
        opening_hours=hours,
        opening_hours_history=_hours_history(previous, hours, now, retention),
        created_at=previous.created_at if previous is not None else now,
        updated_at=now,
    )


async def _store(services: ServicesDep, event: CheckpointEvent) -> None:
    # Kafka (compacted checkpoints.v1) is the source of truth: publish first, then the view.
    await services.publisher.publish(
        Message(CHECKPOINTS, event.checkpoint_id.encode(), event.model_dump_json().encode())
    )
    await services.checkpoints.put(event)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CheckpointOut,
             responses={409: {"description": "checkpoint_id is taken"}})
async def create_checkpoint(body: CheckpointIn, services: ServicesDep, _: Staff) -> CheckpointEvent:
    """Register a checkpoint; usable for ingest as soon as this answers 201."""
    checkpoint_id = body.checkpoint_id or f"CP-{body.ward_code}-{secrets.token_hex(4)}"
    if await services.checkpoints.get(checkpoint_id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"checkpoint {checkpoint_id!r} exists")
    event = _event(body, checkpoint_id, None, timedelta(days=services.settings.retention_days))
    await _store(services, event)
    return event


@router.get("", response_model=CheckpointPage)
async def list_checkpoints(
    services: ServicesDep,
    _: Staff,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> CheckpointPage:
    """Registered checkpoints in id order."""
    items = await services.checkpoints.page(after=cursor, limit=limit)
    next_cursor = items[-1].checkpoint_id if len(items) == limit else None
    return CheckpointPage(items=[CheckpointOut(**i.model_dump()) for i in items],
                          next_cursor=next_cursor)


@router.get("/{checkpoint_id}", response_model=CheckpointOut)
async def get_checkpoint(checkpoint_id: str, services: ServicesDep, _: Staff) -> CheckpointEvent:
    """One checkpoint."""
    found = await services.checkpoints.get(checkpoint_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no checkpoint {checkpoint_id!r}")
    return found


@router.put("/{checkpoint_id}", response_model=CheckpointOut)
async def update_checkpoint(checkpoint_id: str, body: CheckpointIn, services: ServicesDep,
                            _: Staff) -> CheckpointEvent:
    """Replace a checkpoint's details (its id cannot change)."""
    if body.checkpoint_id is not None and body.checkpoint_id != checkpoint_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "checkpoint_id"], "msg": "must match the path or be omitted",
            "type": "id_mismatch"}])
    found = await services.checkpoints.get(checkpoint_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no checkpoint {checkpoint_id!r}")
    event = _event(body, checkpoint_id, found, timedelta(days=services.settings.retention_days))
    await _store(services, event)
    return event

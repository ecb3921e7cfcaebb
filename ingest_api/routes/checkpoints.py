"""The checkpoint registry (staff)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from ingest_api.access import Principal
from ingest_api.deps import Admin, ServicesDep, Staff, require_ward, visible_checkpoint
from ingest_api.errors import ConflictError
from ingest_api.models import CheckpointOut, CheckpointPage
from ingest_api.printing import poster_pdf, qr_png, qr_svg
from ingest_api.publisher import Message
from vhc_common.schemas import (
    AuditEvent,
    CheckpointEvent,
    CheckpointIn,
    NamingVerdict,
    OpeningHoursChange,
)
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


def _ward(body: CheckpointIn) -> None:
    try:
        lookup_ward(body.ward_code)
    except UnknownWardError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "ward_code"], "msg": str(exc), "type": "unknown_ward"}]) from exc


async def _judge(services: ServicesDep, body: CheckpointIn,
                 checkpoint_id: str) -> NamingVerdict:
    """The name's verdict; in strict mode a bad name is refused (422) with every rule it
    breaks and the suggested name."""
    verdict = await services.naming.judge(body.name, kind=body.kind.value,
                                          ward_code=body.ward_code,
                                          checkpoint_id=checkpoint_id)
    if services.naming.strict and not verdict.conforms:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [
            {"loc": ["body", "name"], "type": f"naming_{v.rule}", "msg": v.message,
             "msg_vi": v.message_vi, "suggestion": verdict.suggestion}
            for v in verdict.violations])
    return verdict


def _event(body: CheckpointIn, checkpoint_id: str, previous: CheckpointEvent | None,
           retention: timedelta, *, naming: NamingVerdict, by: str) -> CheckpointEvent:
    ward = lookup_ward(body.ward_code)
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
        naming=naming,
        updated_by=by,
    )


async def _store(services: ServicesDep, event: CheckpointEvent,
                 previous: CheckpointEvent | None) -> None:
    # Kafka (compacted checkpoints.v1) is the source of truth: publish first, then the view,
    # the name index, the naming alert and the audit record.
    await services.publisher.publish(
        Message(CHECKPOINTS, event.checkpoint_id.encode(), event.model_dump_json().encode())
    )
    await services.checkpoints.put(event)
    await services.naming.remember(event, previous)
    await services.naming.flag(event, previous)
    changed = [] if previous is None else [
        f for f in ("name", "kind", "ward_code", "address", "opening_hours")
        if getattr(previous, f) != getattr(event, f)]
    await services.audit.record(
        action="checkpoint.create" if previous is None else "checkpoint.update",
        target_type="checkpoint", target_id=event.checkpoint_id, by=event.updated_by or "",
        details={"changed": ",".join(changed)} if previous is not None else {})


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CheckpointOut,
             responses={403: {"description": "needs the admin role, or outside the area"},
                        409: {"description": "checkpoint_id is taken"}})
async def create_checkpoint(body: CheckpointIn, services: ServicesDep,
                            who: Admin) -> CheckpointEvent:
    """Register a checkpoint (admins, in their area); usable for ingest as soon as this
    answers 201. The answer's ``naming`` judges the name against the convention (strict
    mode refuses a bad one)."""
    _ward(body)
    require_ward(services, who, body.ward_code)
    checkpoint_id = body.checkpoint_id or f"CP-{body.ward_code}-{secrets.token_hex(4)}"
    if await services.checkpoints.get(checkpoint_id) is not None:
        raise ConflictError(f"checkpoint {checkpoint_id!r} exists")
    naming = await _judge(services, body, checkpoint_id)
    event = _event(body, checkpoint_id, None, timedelta(days=services.settings.retention_days),
                   naming=naming, by=who.label)
    await _store(services, event, None)
    return event


@router.get("", response_model=CheckpointPage)
async def list_checkpoints(
    services: ServicesDep,
    who: Staff,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> CheckpointPage:
    """Registered checkpoints in id order (of the token's area)."""
    items: list[CheckpointEvent] = []
    after = cursor
    while len(items) < limit:
        page = await services.checkpoints.page(after=after, limit=500)
        for cp in page:
            after = cp.checkpoint_id
            if who.area.covers_ward(cp.ward_code):
                items.append(cp)
                if len(items) == limit:
                    break
        if len(page) < 500:
            break
    next_cursor = items[-1].checkpoint_id if len(items) == limit else None
    return CheckpointPage(items=[CheckpointOut(**i.model_dump()) for i in items],
                          next_cursor=next_cursor)


@router.get("/{checkpoint_id}", response_model=CheckpointOut, responses={403: {}, 404: {}})
async def get_checkpoint(checkpoint_id: str, services: ServicesDep,
                         who: Staff) -> CheckpointEvent:
    """One checkpoint."""
    return await visible_checkpoint(services, who, checkpoint_id)


@router.put("/{checkpoint_id}", response_model=CheckpointOut,
            responses={403: {"description": "needs the admin role, or outside the area"},
                       404: {}})
async def update_checkpoint(checkpoint_id: str, body: CheckpointIn, services: ServicesDep,
                            who: Admin) -> CheckpointEvent:
    """Replace a checkpoint's details (its id cannot change; admins, within their area,
    which the new ward must lie in too)."""
    if body.checkpoint_id is not None and body.checkpoint_id != checkpoint_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "checkpoint_id"], "msg": "must match the path or be omitted",
            "type": "id_mismatch"}])
    _ward(body)
    found = await visible_checkpoint(services, who, checkpoint_id)
    require_ward(services, who, body.ward_code)
    naming = await _judge(services, body, checkpoint_id)
    event = _event(body, checkpoint_id, found, timedelta(days=services.settings.retention_days),
                   naming=naming, by=who.label)
    await _store(services, event, found)
    return event


@router.get("/{checkpoint_id}/audit", response_model=list[AuditEvent])
async def checkpoint_audit(checkpoint_id: str, services: ServicesDep,
                           who: Staff) -> list[AuditEvent]:
    """Who registered and changed this checkpoint, and when (newest first)."""
    await visible_checkpoint(services, who, checkpoint_id)
    return await services.audit.of("checkpoint", checkpoint_id)


_NO_STORE = {"Cache-Control": "no-store"}


async def _code(services: ServicesDep, who: Principal,
                checkpoint_id: str) -> tuple[CheckpointEvent, str]:
    """The checkpoint and its signed code text."""
    cp = await visible_checkpoint(services, who, checkpoint_id)
    return cp, services.qr.payload(cp.checkpoint_id)


@router.get("/{checkpoint_id}/qr.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}}})
async def checkpoint_qr_svg(checkpoint_id: str, services: ServicesDep, who: Staff) -> Response:
    """The checkpoint's signed QR code as SVG (see ``GET /v1/qr/keys`` to verify it)."""
    text = (await _code(services, who, checkpoint_id))[1]
    return Response(qr_svg(text), media_type="image/svg+xml", headers=_NO_STORE)


@router.get("/{checkpoint_id}/qr.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
async def checkpoint_qr_png(checkpoint_id: str, services: ServicesDep, who: Staff) -> Response:
    """The checkpoint's signed QR code as PNG."""
    text = (await _code(services, who, checkpoint_id))[1]
    return Response(qr_png(text), media_type="image/png", headers=_NO_STORE)


@router.get("/{checkpoint_id}/poster.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
async def checkpoint_poster(checkpoint_id: str, services: ServicesDep, who: Staff) -> Response:
    """A printable A4 poster: the code (16 x 16 cm), name, address, instructions."""
    cp, text = await _code(services, who, checkpoint_id)
    pdf = await asyncio.to_thread(poster_pdf, [(cp, text)])
    return Response(pdf, media_type="application/pdf", headers={
        **_NO_STORE, "Content-Disposition": f'inline; filename="poster-{cp.checkpoint_id}.pdf"'})

"""The outbreak-area list (staff): replaced whole, in force on the stream within seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, status

from ingest_api.deps import Admin, ServicesDep, Staff
from ingest_api.models import OutbreakAreasIn, OutbreakAreasOut
from ingest_api.publisher import Message
from vhc_common.schemas import OutbreakAreasEvent
from vhc_common.timebase import to_ms
from vhc_common.topics import OUTBREAK_AREAS

router = APIRouter(prefix="/v1/outbreak-areas", tags=["outbreak areas"])


@router.put("", response_model=OutbreakAreasOut,
            responses={403: {"description": "needs the admin role"}})
async def put_outbreak_areas(body: OutbreakAreasIn, services: ServicesDep,
                             who: Admin) -> OutbreakAreasOut:
    """Replace the list (admins); declarations scanned from ``effective_from`` (default
    now) on are judged against it."""
    now = datetime.now(UTC)
    effective = body.effective_from or now
    oldest = now - timedelta(days=services.settings.retention_days)
    if not oldest <= effective <= now + timedelta(seconds=services.settings.max_future_skew_s):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "effective_from"], "type": "out_of_range",
            "msg": "must lie between the retention period's start and now"}])
    event = OutbreakAreasEvent(areas=tuple(sorted(set(body.areas))), effective_from=effective,
                               updated_by=who.label)
    key = str(to_ms(effective)).encode()
    await services.publisher.publish(Message(OUTBREAK_AREAS, key,
                                             event.model_dump_json().encode()))
    await services.outbreak_areas.put_if_later(event)
    await services.audit.record(action="outbreak_areas.set", target_type="outbreak_areas",
                                target_id="current", by=who.label,
                                details={"areas": ",".join(event.areas)[:2000],
                                         "effective_from": effective.isoformat()})
    return OutbreakAreasOut(areas=list(event.areas), effective_from=effective)


@router.get("", response_model=OutbreakAreasOut)
async def get_outbreak_areas(services: ServicesDep, _: Staff) -> OutbreakAreasOut:
    """The list in force now."""
    current = await services.outbreak_areas.current()
    if current is None:
        return OutbreakAreasOut(areas=[], effective_from=None)
    return OutbreakAreasOut.model_validate(current)

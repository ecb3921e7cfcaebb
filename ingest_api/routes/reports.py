"""Daily reports for staff."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from detectors.underuse import under_used
from ingest_api import inspection
from ingest_api.deps import ServicesDep, Staff, require_ward
from ingest_api.store import checkpoint_days
from vhc_common.timebase import LOCAL_OFFSET
from vhc_common.wards import UnknownWardError, lookup_ward

router = APIRouter(prefix="/v1/reports", tags=["reports"])

LOCAL = LOCAL_OFFSET


class UnderUsedItem(BaseModel):
    checkpoint_id: str
    name: str
    ward_code: str
    ward_name: str
    kind: str
    declarations: int
    peer_median: float
    peers: int


class UnderUsedReport(BaseModel):
    date: date
    ratio: float
    items: list[UnderUsedItem]


@router.get("/under-used", response_model=UnderUsedReport)
async def under_used_checkpoints(
    services: ServicesDep,
    who: Staff,
    day: Annotated[date | None, Query(alias="date", description="local date; default "
                                                                "yesterday (UTC+7)")] = None,
    ward_code: Annotated[str | None, Query(pattern=r"^[0-9]{5}$")] = None,
    ratio: Annotated[float, Query(gt=0, lt=1)] = 0.25,
) -> UnderUsedReport:
    """Checkpoints with far fewer declarations than peers of the same kind in their ward."""
    if ward_code is not None:
        require_ward(services, who, ward_code)
    day = day or (datetime.now(UTC) + LOCAL).date() - timedelta(days=1)
    registry = await services.checkpoints.all(ward_code=ward_code, area=who.area)
    totals = await services.stats.daily_totals(day)
    by_id = {cp.checkpoint_id: cp for cp in registry}
    found = under_used(checkpoint_days(registry, totals), ratio=ratio)
    return UnderUsedReport(date=day, ratio=ratio, items=[
        UnderUsedItem(checkpoint_id=u.checkpoint_id, name=by_id[u.checkpoint_id].name,
                      ward_code=u.ward_code, ward_name=by_id[u.checkpoint_id].ward_name,
                      kind=u.kind, declarations=u.declarations, peer_median=u.peer_median,
                      peers=u.peers)
        for u in found])


@router.get("/inspection", response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}, "application/pdf": {}}}})
async def inspection_report(
    services: ServicesDep,
    who: Staff,
    ward_code: Annotated[str, Query(pattern=r"^[0-9]{5}$", description="official ward code")],
    day: Annotated[date | None, Query(alias="date", description="local date (UTC+7); "
                                                                "default today")] = None,
    format_: Annotated[Literal["html", "pdf"] | None, Query(alias="format")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The day's inspection report for a ward, in Vietnamese: checkpoints registered,
    naming compliance, declarations against peers (under-used named), silent periods,
    abnormal declarations and alerts with their status. HTML, or PDF with
    ``format=pdf`` or ``Accept: application/pdf``."""
    try:
        ward = lookup_ward(ward_code)
    except UnknownWardError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["query", "ward_code"], "msg": str(exc), "type": "unknown_ward"}]) from exc
    require_ward(services, who, ward_code)
    day = day or (datetime.now(UTC) + LOCAL).date()
    report = await inspection.build(ward=ward, day=day, checkpoints=services.checkpoints,
                                    naming=services.naming, alerts=services.alerts,
                                    stats=services.stats)
    pdf = format_ == "pdf" or (format_ is None and accept is not None
                               and "application/pdf" in accept)
    name = f"inspection-{ward_code}-{day.isoformat()}"
    if pdf:
        body = await asyncio.to_thread(inspection.render_pdf, report)
        return Response(body, media_type="application/pdf", headers={
            "Content-Disposition": f'inline; filename="{name}.pdf"'})
    return HTMLResponse(inspection.render_html(report), headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})

"""Confirmed cases (staff): find who was exposed, raise one alert per visit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, status
from pydantic import ValidationError

from ingest_api.deps import CaseOfficer, ServicesDep
from ingest_api.models import CaseIn, CaseOut

router = APIRouter(prefix="/v1/cases", tags=["cases"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CaseOut,
             responses={403: {"description": "needs the case_officer or admin role"},
                        503: {"description": "the worker has not caught up yet; retry"}})
async def report_case(body: CaseIn, services: ServicesDep, who: CaseOfficer) -> CaseOut:
    """Report a confirmed case (case officers and admins; audited): every check-in of that
    person in the look-back, and who else was at the same checkpoint around it, covering
    every declaration accepted before. The answer gives counts and the alert ids, not the
    person's itinerary: the alerts hold where, each visible only in its area."""
    try:
        person = services.pseudonymiser.person(body.person.as_person())
    except ValidationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [
            {"loc": ["body", "person", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors()]) from exc
    now = datetime.now(UTC)
    if body.confirmed_at > now + timedelta(seconds=services.settings.max_future_skew_s):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "confirmed_at"], "msg": "is in the future", "type": "future_time"}])
    result = await services.exposure.report(person, confirmed_at=body.confirmed_at,
                                            reported_at=now, by=who.label)
    await services.audit.record(action="case.report", target_type="case",
                                target_id=result.case.case_id, by=who.label,
                                details={"visits": str(result.visits),
                                         "alerts": str(len(result.alerts)),
                                         "role": who.role.label, "area": str(who.area)})
    return CaseOut(case_id=result.case.case_id, confirmed_at=body.confirmed_at,
                   visits=result.visits,
                   exposed=sum(a.evidence.exposed_count or 0 for a in result.alerts),
                   alert_ids=[a.alert_id for a in result.alerts])

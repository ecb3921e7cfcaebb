"""Confirmed cases (staff): find who was exposed, raise one alert per visit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, status
from pydantic import ValidationError
from redis.exceptions import RedisError

from ingest_api.deps import ServicesDep, Staff
from ingest_api.errors import StoreUnavailableError
from ingest_api.models import AlertOut, CaseIn, CaseOut

router = APIRouter(prefix="/v1/cases", tags=["cases"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CaseOut,
             responses={503: {"description": "the worker has not caught up yet; retry"}})
async def report_case(body: CaseIn, services: ServicesDep, who: Staff) -> CaseOut:
    """Report a confirmed case: every check-in of that person in the look-back, and who else
    was at the same checkpoint around it, covering every declaration accepted before."""
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
                                            reported_at=now, by=who)
    await services.audit.record(action="case.report", target_type="case",
                                target_id=result.case.case_id, by=who,
                                details={"visits": str(result.visits),
                                         "alerts": str(len(result.alerts))})
    try:
        stored = [await services.alerts.get(a.alert_id) for a in result.alerts]
    except RedisError as exc:
        raise StoreUnavailableError(f"redis: {exc}") from exc
    return CaseOut(case_id=result.case.case_id, confirmed_at=body.confirmed_at,
                   visits=result.visits,
                   alerts=[AlertOut.model_validate(s) for s in stored if s is not None])

"""Alerts for staff: list, read, acknowledge, resolve, and a live Server-Sent Events stream."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from ingest_api.access import Principal
from ingest_api.deps import Responder, ServicesDep, Staff, StaffStream, require_ward
from ingest_api.errors import ConflictError, NotFoundError
from ingest_api.models import AlertOut, AlertPage, NoteIn
from ingest_api.publisher import Message
from ingest_api.sse import TooManyStreamsError, parse_event_id
from vhc_common.alert_view import AlertMissingError, AlertResolvedError
from vhc_common.schemas import AlertKind, AlertStatus, AlertStatusEvent, Severity
from vhc_common.topics import ALERT_STATUS

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

SCAN_BATCH = 200
SCAN_MAX = 5000
_RANK = {"info": 0, "warning": 1, "critical": 2}


def _matches(alert: dict[str, Any], *, status_: AlertStatus | None, kind: AlertKind | None,
             severity: Severity | None, checkpoint_id: str | None, ward_code: str | None,
             since: datetime | None) -> bool:
    if not alert:
        return False
    return ((status_ is None or alert["status"] == status_.value)
            and (kind is None or alert["kind"] == kind.value)
            and (severity is None or alert["severity"] == severity.value)
            and (checkpoint_id is None or alert.get("checkpoint_id") == checkpoint_id)
            and (ward_code is None or alert.get("ward_code") == ward_code)
            and (since is None or datetime.fromisoformat(alert["detected_at"]) >= since))


@router.get("", response_model=AlertPage)
async def list_alerts(
    services: ServicesDep,
    who: Staff,
    status_: Annotated[AlertStatus | None, Query(alias="status")] = None,
    kind: AlertKind | None = None,
    severity: Severity | None = None,
    checkpoint_id: str | None = None,
    ward_code: str | None = None,
    since: Annotated[AwareDatetime | None, Query(
        description="detected at or after (RFC 3339 with an offset)")] = None,
    min_severity: Annotated[Severity | None, Query(description="this severity or higher "
                                                   "(v1.1; e.g. warning leaves info out)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$")] = None,
) -> AlertPage:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page. A scoped
    token sees only alerts of its area (a ``ward_code`` outside it: 403)."""
    if ward_code is not None:
        require_ward(services, who, ward_code)
    area = who.area

    def wanted(alert: dict[str, Any]) -> bool:
        return (_matches(alert, status_=status_, kind=kind, severity=severity,
                         checkpoint_id=checkpoint_id, ward_code=ward_code, since=since)
                and area.covers_ward(alert.get("ward_code"))
                and (min_severity is None
                     or _RANK[alert["severity"]] >= _RANK[min_severity.value]))

    # A RedisError is answered 503 (main.py).
    items, last, _ = await services.alerts.find(
        wanted, facets={"kind": kind and kind.value, "severity": severity and severity.value,
                        "checkpoint_id": checkpoint_id, "ward_code": ward_code},
        before_seq=int(cursor) if cursor else None, limit=limit, batch=SCAN_BATCH,
        scan_max=SCAN_MAX)
    next_cursor = None if last is None else str(last)
    return AlertPage(items=[AlertOut.model_validate(a) for a in items], next_cursor=next_cursor)


@router.get("/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def alert_stream(
    services: ServicesDep,
    who: StaffStream,
    last_event_id: Annotated[str | None, Header(max_length=41)] = None,
) -> StreamingResponse:
    """Server-Sent Events: ``event: alert`` for every new alert and status change;
    ``Last-Event-ID`` resumes after that event. Browsers' EventSource may pass the staff
    token as ``?access_token=``. Streams per credential are capped (``429``). A scoped
    token gets only the alerts of its area."""
    if last_event_id is not None and parse_event_id(last_event_id) is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["header", "last-event-id"], "type": "event_id",
            "msg": "must be an event id of this stream, <ms>-<seq>"}])
    try:
        services.feed.check(who.label)
    except TooManyStreamsError as exc:
        services.metrics.rejected.labels("too_many_streams").inc()
        code = (status.HTTP_429_TOO_MANY_REQUESTS if exc.per_token
                else status.HTTP_503_SERVICE_UNAVAILABLE)
        raise HTTPException(code, str(exc), headers={"Retry-After": "5"}) from exc
    area = who.area
    body = services.feed.events(who.label, last_event_id or "$",
                                keepalive_s=services.settings.sse_keepalive_s,
                                visible=None if area.everywhere
                                else lambda alert: area.covers_ward(alert.get("ward_code")))
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _visible(services: ServicesDep, who: Principal, alert_id: str) -> dict[str, Any]:
    """The alert, if it exists (404) and lies in the caller's area (403)."""
    found = await services.alerts.get(alert_id)  # a RedisError is answered 503 (main.py)
    if found is None:
        raise NotFoundError(f"no alert {alert_id!r}")
    require_ward(services, who, found.get("ward_code"))
    return found


@router.get("/{alert_id}", response_model=AlertOut, responses={403: {}, 404: {}})
async def get_alert(alert_id: str, services: ServicesDep, who: Staff) -> AlertOut:
    """One alert."""
    return AlertOut.model_validate(await _visible(services, who, alert_id))


async def _change(alert_id: str, new: AlertStatus, body: NoteIn | None, services: ServicesDep,
                  who: Principal) -> AlertOut:
    await _visible(services, who, alert_id)

    async def publish(alert: dict[str, Any]) -> None:
        event = AlertStatusEvent(alert_id=alert_id, status=AlertStatus(alert["status"]),
                                 history=tuple(alert["history"]))
        await services.publisher.publish(Message(ALERT_STATUS, alert_id.encode(),
                                                 event.model_dump_json().encode()))

    try:
        changed = await services.alerts.set_status(alert_id, new, note=body.note if body else None,
                                                   by=who.label, publish=publish)
    except AlertMissingError as exc:
        raise NotFoundError(str(exc)) from exc
    except AlertResolvedError as exc:
        raise ConflictError(str(exc)) from exc
    action = "alert.acknowledge" if new == AlertStatus.ACKNOWLEDGED else "alert.resolve"
    await services.audit.record(action=action, target_type="alert", target_id=alert_id,
                                by=who.label, note=body.note if body else None)
    return AlertOut.model_validate(changed)


@router.post("/{alert_id}/ack", response_model=AlertOut,
             responses={403: {"description": "needs the responder role, or outside the area"},
                        404: {}, 409: {"description": "the alert is resolved already"}})
async def acknowledge(alert_id: str, services: ServicesDep, who: Responder,
                      body: NoteIn | None = None) -> AlertOut:
    """Acknowledge: someone is looking into it."""
    return await _change(alert_id, AlertStatus.ACKNOWLEDGED, body, services, who)


@router.post("/{alert_id}/resolve", response_model=AlertOut,
             responses={403: {"description": "needs the responder role, or outside the area"},
                        404: {}, 409: {"description": "the alert is resolved already"}})
async def resolve(alert_id: str, services: ServicesDep, who: Responder,
                  body: NoteIn | None = None) -> AlertOut:
    """Resolve: handled; final."""
    return await _change(alert_id, AlertStatus.RESOLVED, body, services, who)

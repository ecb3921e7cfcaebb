"""The outbreak-area list (staff): replaced whole, in force on the stream within seconds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, status
from redis.exceptions import RedisError

from ingest_api.deps import Admin, ServicesDep, Staff
from ingest_api.errors import StoreUnavailableError
from ingest_api.models import OutbreakAreasIn, OutbreakAreasOut
from ingest_api.publisher import Message
from vhc_common import redis_keys
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
    out = OutbreakAreasOut(areas=list(event.areas), effective_from=effective)
    try:
        # The list in force now is the one with the latest start, backdated or not.
        await services.redis.eval(_SET_IF_LATER, 1, redis_keys.outbreak_areas(),
                                  out.model_dump_json(), to_ms(effective))
    except RedisError as exc:
        raise StoreUnavailableError(f"redis: {exc}") from exc
    await services.audit.record(action="outbreak_areas.set", target_type="outbreak_areas",
                                target_id="current", by=who.label,
                                details={"areas": ",".join(event.areas)[:2000],
                                         "effective_from": effective.isoformat()})
    return out


_SET_IF_LATER = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local at = redis.call('GET', KEYS[1] .. ':at')
  if at and tonumber(at) > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[1] .. ':at', ARGV[2])
return 1
"""


@router.get("", response_model=OutbreakAreasOut)
async def get_outbreak_areas(services: ServicesDep, _: Staff) -> OutbreakAreasOut:
    """The list in force now."""
    try:
        raw = await services.redis.get(redis_keys.outbreak_areas())
    except RedisError as exc:
        raise StoreUnavailableError(f"redis: {exc}") from exc
    if raw is None:
        return OutbreakAreasOut(areas=[], effective_from=None)
    return OutbreakAreasOut.model_validate(json.loads(raw))

"""The outbreak-area list (staff): replaced whole, in force on the stream within seconds."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import APIRouter
from redis.exceptions import RedisError

from ingest_api.deps import ServicesDep, Staff
from ingest_api.errors import StoreUnavailableError
from ingest_api.models import OutbreakAreasIn, OutbreakAreasOut
from ingest_api.publisher import Message
from vhc_common import redis_keys
from vhc_common.schemas import OutbreakAreasEvent
from vhc_common.topics import OUTBREAK_AREAS

router = APIRouter(prefix="/v1/outbreak-areas", tags=["outbreak areas"])


@router.put("", response_model=OutbreakAreasOut)
async def put_outbreak_areas(body: OutbreakAreasIn, services: ServicesDep,
                             who: Staff) -> OutbreakAreasOut:
    """Replace the list; declarations scanned from now on are judged against it."""
    now = datetime.now(UTC)
    event = OutbreakAreasEvent(areas=tuple(sorted(set(body.areas))), effective_from=now,
                               updated_by=who)
    key = str(int(now.timestamp() * 1000)).encode()
    await services.publisher.publish(Message(OUTBREAK_AREAS, key,
                                             event.model_dump_json().encode()))
    out = OutbreakAreasOut(areas=list(event.areas), effective_from=now)
    try:
        await services.redis.set(redis_keys.outbreak_areas(), out.model_dump_json())
    except RedisError as exc:
        raise StoreUnavailableError(f"redis: {exc}") from exc
    return out


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

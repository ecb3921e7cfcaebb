"""The console's overview: every checkpoint's live counts, naming and under-use at once,
and the same summed per ward."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from detectors.counts import hours_overlapping, window_counts
from detectors.underuse import under_used
from ingest_api.deps import ServicesDep, Staff, require_ward
from ingest_api.models import WindowStats
from ingest_api.routes.stats import WINDOWS_MS, vars_of
from ingest_api.store import checkpoint_days
from vhc_common.schemas import NamingVerdict
from vhc_common.timebase import LOCAL_OFFSET

router = APIRouter(prefix="/v1/overview", tags=["stats"])

MAX_CHECKPOINTS = 2_000


class CheckpointRow(BaseModel):
    checkpoint_id: str
    name: str
    kind: str
    address: str
    ward_code: str
    ward_name: str
    province_name: str
    last_declaration_at: AwareDatetime | None
    windows: dict[str, WindowStats]
    naming: NamingVerdict | None
    under_used: bool
    declarations_yesterday: int


class WardRow(BaseModel):
    ward_code: str
    ward_name: str
    province_name: str
    checkpoints: int
    windows: dict[str, WindowStats]
    naming_violations: int
    under_used: int
    quiet_1h: int


class Overview(BaseModel):
    as_of: AwareDatetime
    under_use_day: str
    checkpoints: list[CheckpointRow]
    wards: list[WardRow]
    truncated: bool


@router.get("", response_model=Overview)
async def overview(
    services: ServicesDep, who: Staff,
    ward_code: Annotated[str | None, Query(pattern=r"^[0-9]{5}$")] = None,
) -> Overview:
    """Live 5 m / 1 h / 24 h counts, last-seen time, naming verdict and yesterday's
    under-use flag of every checkpoint (of a ward; of the token's area), and per-ward
    sums."""
    if ward_code is not None:
        require_ward(services, who, ward_code)
    registry = await services.checkpoints.all(ward_code=ward_code, area=who.area)
    truncated = len(registry) > MAX_CHECKPOINTS
    registry = registry[:MAX_CHECKPOINTS]
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    hours = hours_overlapping(end_ms=now_ms, window_ms=max(WINDOWS_MS.values()))
    yesterday = (now + LOCAL_OFFSET).date() - timedelta(days=1)
    totals = await services.stats.daily_totals(yesterday)
    flagged = {u.checkpoint_id for u in under_used(checkpoint_days(registry, totals))}
    semaphore = asyncio.Semaphore(16)

    async def live(checkpoint_id: str) -> tuple[int | None, Any]:
        async with semaphore:
            return await services.stats.buckets(checkpoint_id, hours)

    found = await asyncio.gather(*(live(cp.checkpoint_id) for cp in registry))
    names = await services.naming.names()  # verdicts judged now: the rule or registry may
    # have changed since a checkpoint was stored
    rows: list[CheckpointRow] = []
    for cp, (last_ms, buckets) in zip(registry, found, strict=True):
        rows.append(CheckpointRow(
            checkpoint_id=cp.checkpoint_id, name=cp.name, kind=cp.kind.value,
            address=cp.address, ward_code=cp.ward_code, ward_name=cp.ward_name,
            province_name=cp.province_name,
            last_declaration_at=(datetime.fromtimestamp(last_ms / 1000, UTC)
                                 if last_ms is not None else None),
            windows={name: WindowStats(**vars_of(window_counts(buckets, end_ms=now_ms,
                                                                window_ms=ms)))
                     for name, ms in WINDOWS_MS.items()},
            naming=services.naming.verdict(cp.name, kind=cp.kind.value, ward_code=cp.ward_code,
                                           checkpoint_id=cp.checkpoint_id, others=names),
            under_used=cp.checkpoint_id in flagged,
            declarations_yesterday=totals.get(cp.checkpoint_id, 0)))
    return Overview(as_of=now, under_use_day=yesterday.isoformat(), checkpoints=rows,
                    wards=_wards(rows), truncated=truncated)


def _wards(rows: list[CheckpointRow]) -> list[WardRow]:
    by_ward: dict[str, list[CheckpointRow]] = {}
    for row in rows:
        by_ward.setdefault(row.ward_code, []).append(row)
    out = []
    for code, members in sorted(by_ward.items()):
        windows = {name: WindowStats(**{
            field: sum(getattr(m.windows[name], field) for m in members)
            for field in WindowStats.model_fields}) for name in WINDOWS_MS}
        out.append(WardRow(
            ward_code=code, ward_name=members[0].ward_name,
            province_name=members[0].province_name, checkpoints=len(members),
            windows=windows,
            naming_violations=sum(1 for m in members if m.naming and not m.naming.conforms),
            under_used=sum(1 for m in members if m.under_used),
            quiet_1h=sum(1 for m in members if m.windows["1h"].total == 0)))
    return out

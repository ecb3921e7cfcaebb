"""Shared state of the API process and its dependency aliases for route handlers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request, status
from redis.asyncio import Redis

from ingest_api.access import Principal, Role
from ingest_api.audit import AuditLog
from ingest_api.config import ApiSettings
from ingest_api.errors import NotFoundError
from ingest_api.exposure import ExposureService
from ingest_api.ingest import IngestService
from ingest_api.metrics import ApiMetrics
from ingest_api.naming import NamingService
from ingest_api.publisher import KafkaPublisher
from ingest_api.security import CredentialSet, RateLimiter
from ingest_api.sse import AlertFeed
from ingest_api.store import CheckpointStore, OutbreakAreaStore, StatsStore
from vhc_common.alert_view import AlertView
from vhc_common.pseudonym import Pseudonymiser
from vhc_common.qr import QrSigner
from vhc_common.schemas import CheckpointEvent

__all__ = [
    "Admin",
    "CaseOfficer",
    "FrontEnd",
    "Responder",
    "Services",
    "ServicesDep",
    "Staff",
    "StaffStream",
    "charge_declarations",
    "forbidden",
    "refusal",
    "require_ward",
    "visible_checkpoint",
]


@dataclass
class Services:
    settings: ApiSettings
    metrics: ApiMetrics
    redis: Redis
    publisher: KafkaPublisher
    ingest: IngestService
    checkpoints: CheckpointStore
    outbreak_areas: OutbreakAreaStore
    stats: StatsStore
    ingest_keys: CredentialSet
    staff_tokens: CredentialSet
    limiter: RateLimiter
    declaration_limiter: RateLimiter
    unauthenticated: RateLimiter
    registry_synced: asyncio.Event
    alerts: AlertView
    exposure: ExposureService
    pseudonymiser: Pseudonymiser
    naming: NamingService
    audit: AuditLog
    qr: QrSigner
    feed: AlertFeed


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _limit(services: Services, who: str) -> None:
    wait_s = services.limiter.acquire(who)
    if wait_s:
        services.metrics.rejected.labels("rate_limited").inc()
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "rate limit exceeded",
                            headers={"Retry-After": RateLimiter.retry_after_header(wait_s)})


def charge_declarations(services: Services, who: Principal, count: int) -> None:
    """Take ``count`` declarations from the key's declaration budget, or answer 429: a
    500-item batch costs 500, not one request."""
    wait_s = services.declaration_limiter.acquire("key:" + who.label, cost=count)
    if wait_s:
        services.metrics.rejected.labels("rate_limited").inc()
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"declaration rate limit exceeded ({count} declarations)",
                            headers={"Retry-After": RateLimiter.retry_after_header(wait_s)})


async def front_end(
    request: Request,
    services: ServicesDep,
    x_api_key: Annotated[str | None, Header(description="front-end API key")] = None,
) -> Principal:
    who = services.ingest_keys.check(x_api_key)
    if who is None:
        _refused(services, request)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid X-API-Key",
                            headers={"WWW-Authenticate": "ApiKey"})
    _limit(services, "key:" + who.label)
    return who


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def refusal(services: Services, address: str) -> HTTPException | None:
    """For a request without valid credentials: counted, and limited per client address,
    so guessing credentials or flooding without them is slowed down. The 429 to answer
    once the address's bucket is empty, else ``None`` (answer 401)."""
    services.metrics.rejected.labels("unauthorized").inc()
    wait_s = services.unauthenticated.acquire(address)
    if wait_s:
        services.metrics.rejected.labels("rate_limited").inc()
        return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                             "too many requests without valid credentials",
                             headers={"Retry-After": RateLimiter.retry_after_header(wait_s)})
    return None


def _refused(services: Services, request: Request) -> None:
    limited = refusal(services, request.client.host if request.client else "unknown")
    if limited is not None:
        raise limited


def _staff(services: Services, request: Request, token: str | None) -> Principal:
    who = services.staff_tokens.check(token)
    if who is None:
        _refused(services, request)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    _limit(services, "staff:" + who.label)
    return who


def forbidden(services: Services, detail: str) -> HTTPException:
    """A 403 for a valid credential that may not do this (counted)."""
    services.metrics.rejected.labels("forbidden").inc()
    return HTTPException(status.HTTP_403_FORBIDDEN, detail)


def require_ward(services: Services, who: Principal, ward_code: str | None) -> None:
    """403 unless ``ward_code`` lies in the caller's area."""
    if not who.area.covers_ward(ward_code):
        raise forbidden(services, f"outside this credential's area ({who.area})")


async def visible_checkpoint(services: Services, who: Principal,
                             checkpoint_id: str) -> CheckpointEvent:
    """The checkpoint, if registered (404) and in the caller's area (403)."""
    found = await services.checkpoints.get(checkpoint_id)
    if found is None:
        raise NotFoundError(f"no checkpoint {checkpoint_id!r}")
    require_ward(services, who, found.ward_code)
    return found


async def staff(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header(description="Bearer <staff token>")] = None,
) -> Principal:
    return _staff(services, request, _bearer(authorization))


def _role(role: Role) -> object:
    async def check(request: Request, services: ServicesDep,
                    authorization: Annotated[str | None, Header(
                        description="Bearer <staff token>")] = None) -> Principal:
        who = _staff(services, request, _bearer(authorization))
        if not who.may(role):
            raise forbidden(services, f"needs the {role.label} role (this token is "
                                      f"{who.role.label})")
        return who
    return Depends(check)


async def staff_stream(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header(description="Bearer <staff token>")] = None,
    access_token: Annotated[str | None, Query(description="for EventSource, which cannot "
                                                           "send headers")] = None,
) -> Principal:
    return _staff(services, request, _bearer(authorization) or access_token)


FrontEnd = Annotated[Principal, Depends(front_end)]
#: Any staff token (viewer and up).
Staff = Annotated[Principal, Depends(staff)]
StaffStream = Annotated[Principal, Depends(staff_stream)]
Responder = Annotated[Principal, _role(Role.RESPONDER)]
CaseOfficer = Annotated[Principal, _role(Role.CASE_OFFICER)]
Admin = Annotated[Principal, _role(Role.ADMIN)]

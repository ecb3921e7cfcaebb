"""Shared state of the API process and its dependency aliases for route handlers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request, status
from redis.asyncio import Redis

from ingest_api.audit import AuditLog
from ingest_api.config import ApiSettings
from ingest_api.exposure import ExposureService
from ingest_api.ingest import IngestService
from ingest_api.metrics import ApiMetrics
from ingest_api.naming import NamingService
from ingest_api.publisher import KafkaPublisher
from ingest_api.security import CredentialSet, RateLimiter
from ingest_api.sse import AlertFeed
from ingest_api.store import CheckpointStore, StatsStore
from vhc_common.alert_view import AlertView
from vhc_common.pseudonym import Pseudonymiser
from vhc_common.qr import QrSigner

__all__ = ["FrontEnd", "Services", "ServicesDep", "Staff", "StaffStream", "refusal"]


@dataclass
class Services:
    settings: ApiSettings
    metrics: ApiMetrics
    redis: Redis
    publisher: KafkaPublisher
    ingest: IngestService
    checkpoints: CheckpointStore
    stats: StatsStore
    ingest_keys: CredentialSet
    staff_tokens: CredentialSet
    limiter: RateLimiter
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


async def front_end(
    request: Request,
    services: ServicesDep,
    x_api_key: Annotated[str | None, Header(description="front-end API key")] = None,
) -> str:
    who = services.ingest_keys.check(x_api_key)
    if who is None:
        _refused(services, request)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid X-API-Key",
                            headers={"WWW-Authenticate": "ApiKey"})
    _limit(services, "key:" + who)
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


def _staff(services: Services, request: Request, token: str | None) -> str:
    who = services.staff_tokens.check(token)
    if who is None:
        _refused(services, request)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    _limit(services, "staff:" + who)
    return who


async def staff(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header(description="Bearer <staff token>")] = None,
) -> str:
    return _staff(services, request, _bearer(authorization))


async def staff_stream(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header(description="Bearer <staff token>")] = None,
    access_token: Annotated[str | None, Query(description="for EventSource, which cannot "
                                                           "send headers")] = None,
) -> str:
    return _staff(services, request, _bearer(authorization) or access_token)


FrontEnd = Annotated[str, Depends(front_end)]
Staff = Annotated[str, Depends(staff)]
StaffStream = Annotated[str, Depends(staff_stream)]

"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest_api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is not ready"}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 only when Kafka and Redis answer, a worker is consuming and the registry view
    has been checked against Kafka."""
    kafka_ok = await services.publisher.reachable()
    redis_ok = await services.stats.ping()
    worker_ok = (not services.settings.worker_heartbeat_required
                 or (redis_ok and await services.stats.worker_alive()))
    checks = {"kafka": kafka_ok, "redis": redis_ok, "worker": worker_ok,
              "registry": services.registry_synced.is_set()}
    ready = all(checks.values())
    return JSONResponse({"ready": ready, "checks": checks},
                        status_code=status.HTTP_200_OK if ready
                        else status.HTTP_503_SERVICE_UNAVAILABLE)


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)

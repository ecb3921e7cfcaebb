"""The API application: ``create_app`` builds it, ``run`` serves it (``vhc-api``)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from detectors.naming import NamingRule
from ingest_api import recovery, surveillance
from ingest_api.audit import AuditLog
from ingest_api.config import ApiSettings, qr_seed
from ingest_api.deps import Services, refusal
from ingest_api.errors import (
    BrokerUnavailableError,
    ConflictError,
    NotFoundError,
    StoreUnavailableError,
)
from ingest_api.exposure import ExposureService, WorkerBehindError
from ingest_api.ingest import IngestService
from ingest_api.metrics import ApiMetrics
from ingest_api.naming import NamingService
from ingest_api.publisher import KafkaPublisher
from ingest_api.routes import alerts as alert_routes
from ingest_api.routes import (
    cases,
    checkpoints,
    console,
    declarations,
    health,
    me,
    outbreak_areas,
    overview,
    printing,
    reports,
    stats,
)
from ingest_api.security import CredentialSet, RateLimiter
from ingest_api.sse import AlertFeed
from ingest_api.store import CheckpointStore, OutbreakAreaStore, SeenStore, StatsStore
from vhc_common import kafka_security, native, redis_wire
from vhc_common.alert_view import AlertView
from vhc_common.kafka_admin import ensure_topics
from vhc_common.pseudonym import Pseudonymiser
from vhc_common.qr import QrSigner
from vhc_common.redis_loss import RedisLossGuard
from vhc_common.runtime import tune_gc
from vhc_common.settings import settings_errors
from vhc_common.topics import topic_specs

__all__ = ["create_app", "run", "serve"]

log = logging.getLogger(__name__)


def build_services(settings: ApiSettings, metrics: ApiMetrics | None = None) -> Services:
    metrics = metrics if metrics is not None else ApiMetrics()
    redis = redis_wire.client(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    publisher = KafkaPublisher(settings.kafka_bootstrap, timeout_s=settings.publish_timeout_s,
                               linger_ms=settings.kafka_linger_ms,
                               batch_bytes=settings.kafka_batch_bytes,
                               on_error=lambda topic: metrics.publish_errors.labels(topic).inc())
    checkpoint_store = CheckpointStore(redis)
    registry_synced = asyncio.Event()
    pseudonymiser = Pseudonymiser(settings.pseudonym_secret.get_secret_value().encode())
    credential_key = CredentialSet.derive_key(settings.pseudonym_secret.get_secret_value()
                                              .encode())
    alerts = AlertView(redis, retention_s=settings.retention_days * 86_400)
    return Services(
        settings=settings,
        metrics=metrics,
        redis=redis,
        publisher=publisher,
        ingest=IngestService(
            publisher=publisher,
            # A claim outlives the whole publish path (send, acknowledgement, confirm).
            seen=SeenStore(redis, retention_s=settings.retention_days * 86_400,
                           pending_ttl_s=max(30, int(4 * settings.publish_timeout_s) + 10)),
            pseudonymiser=pseudonymiser,
            metrics=metrics,
            max_future_skew_s=settings.max_future_skew_s,
            retention_days=settings.retention_days,
            registry_synced=registry_synced.is_set,
        ),
        checkpoints=checkpoint_store,
        outbreak_areas=OutbreakAreaStore(redis),
        stats=StatsStore(redis),
        ingest_keys=CredentialSet(settings.ingest_entries, key=credential_key),
        staff_tokens=CredentialSet(settings.staff_entries, key=credential_key),
        limiter=RateLimiter(rate_per_s=settings.rate_limit_per_s,
                            burst=settings.rate_limit_burst),
        declaration_limiter=RateLimiter(rate_per_s=settings.declaration_rate_per_s,
                                        burst=settings.declaration_burst),
        unauthenticated=RateLimiter(rate_per_s=settings.unauthenticated_rate_per_s,
                                    burst=settings.unauthenticated_burst),
        registry_synced=registry_synced,
        alerts=alerts,
        exposure=ExposureService(
            redis=redis, publisher=publisher, alerts=alerts, checkpoints=checkpoint_store,
            bootstrap=settings.kafka_bootstrap,
            lookback=timedelta(days=settings.exposure_lookback_days),
            window=timedelta(minutes=settings.exposure_window_min),
            on_alert=lambda a: metrics.alerts.labels(a.kind.value, a.severity.value).inc()),
        pseudonymiser=pseudonymiser,
        naming=NamingService(rule=NamingRule(settings.naming_rule),
                             strict=settings.naming_mode == "strict", redis=redis,
                             alerts=alerts, publisher=publisher,
                             on_alert=lambda a: metrics.alerts.labels(
                                 a.kind.value, a.severity.value).inc()),
        audit=AuditLog(redis=redis, publisher=publisher,
                       retention_s=settings.retention_days * 86_400),
        qr=(QrSigner(qr_seed(settings.qr_signing_key.get_secret_value()))
            if settings.qr_signing_key is not None
            else QrSigner.derived(settings.pseudonym_secret.get_secret_value().encode())),
        feed=AlertFeed(settings.redis_url, max_streams=settings.sse_max_streams,
                       max_per_token=settings.sse_max_per_token),
    )


async def _prepare_kafka(services: Services, guard: RedisLossGuard) -> None:
    """In the background (the API serves /healthz meanwhile): create the topics, then put
    back whatever the registry and outbreak-area views lack, then mark the store as
    holding them (``guard``'s first check)."""
    settings = services.settings
    specs = topic_specs(partitions=settings.partitions, retention_days=settings.retention_days)
    while True:
        try:
            # Short tries in this loop: a stopping API waits for the thread of the last one.
            await asyncio.to_thread(ensure_topics, settings.kafka_bootstrap, specs,
                                    timeout_s=5.0)
            await guard.lost()  # the first check: restored now whatever it says
            await recovery.restore_views(services)
            await guard.mark_restored()
            services.registry_synced.set()
            return
        except recovery.RECOVERABLE as exc:
            log.warning("Kafka/registry not ready yet, retrying in 2 s: %s", exc)
            await asyncio.sleep(2)


class BodyLimit:
    """Answer 413 for bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, on_reject: Callable[[], None]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # No length given (chunked): read the body up to the limit before the app sees it,
        # so an oversize body is a 413 (raised while the app parsed it, it became a 400).
        chunks: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replay = iter(chunks)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.on_reject()
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"},
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
        )
        await response(scope, receive, send)


class CredentialsFirst:
    """Refuse a request that carries a body but no valid credential before the body is
    read or parsed (FastAPI parses the body before it solves dependencies): front-end
    routes need ``X-API-Key``, every other ``/v1/`` route a staff bearer token. The route's
    own dependency checks again (and scopes, roles and rate limits stay there)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services | None = getattr(getattr(scope.get("app"), "state", None),
                                            "services", None)
        if (scope["type"] != "http" or scope["method"] not in _WITH_BODY
                or not scope["path"].startswith("/v1/") or services is None):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if scope["path"].startswith("/v1/declarations"):
            key = headers.get(b"x-api-key", b"").decode("latin-1")
            ok, scheme = services.ingest_keys.check(key) is not None, "ApiKey"
        else:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            ok, scheme = services.staff_tokens.check(token) is not None, "Bearer"
        if ok:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        limited = refusal(services, client[0] if client else "unknown")
        response = (JSONResponse({"detail": limited.detail}, status_code=limited.status_code,
                                 headers=limited.headers) if limited is not None
                    else JSONResponse({"detail": "missing or invalid credentials"},
                                      status_code=status.HTTP_401_UNAUTHORIZED,
                                      headers={"WWW-Authenticate": scheme}))
        await response(scope, receive, send)


_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class Observe:
    """Request count and latency by route template (bounded: templates, not raw paths) and
    status class; a pure ASGI middleware (``BaseHTTPMiddleware`` costs a task and a
    memory stream per request)."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def observed(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.requests.labels(template, method, f"{status_code // 100}xx").inc()
            self.metrics.request_seconds.labels(template).observe(
                time.perf_counter() - started)


_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})


def create_app(settings: ApiSettings | None = None, metrics: ApiMetrics | None = None) -> FastAPI:
    settings = settings if settings is not None else ApiSettings()
    services = build_services(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = services
        guard = RedisLossGuard(services.redis, "api")
        topics = asyncio.create_task(_prepare_kafka(services, guard))
        redis_watch = asyncio.create_task(recovery.watch(services, guard))
        await services.feed.start()
        services.metrics.sse_clients.set_function(lambda: services.feed.open_streams)
        gauges = asyncio.create_task(surveillance.run(
            metrics=services.metrics, stats=services.stats, checkpoints=services.checkpoints,
            alerts=services.alerts, interval_s=settings.surveillance_refresh_s))
        try:
            yield
        finally:
            topics.cancel()
            gauges.cancel()
            redis_watch.cancel()
            await services.feed.stop()
            await asyncio.to_thread(services.publisher.close)
            await asyncio.to_thread(services.exposure.close)
            await services.redis.aclose()

    # Swagger UI and ReDoc from files in the package, not a CDN: /docs works offline.
    app = FastAPIOffline(
        static_url="/static/docs",
        title="vhc-watch API",
        version="1.0.0",
        summary="Health declarations from QR control points, checkpoint registry and live "
        "statistics. See CONTRACT.md for the behaviour this document does not say.",
        lifespan=lifespan,
    )
    for router in (declarations.router, checkpoints.router, stats.router, alert_routes.router,
                   outbreak_areas.router, cases.router, reports.router, printing.router,
                   overview.router, me.router, health.router, console.router):
        app.include_router(router)

    def unavailable(what: str, dependency: str
                    ) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(_: Request, exc: Exception) -> Response:
            log.warning("%s unavailable: %s", what, exc)
            services.metrics.dependency_errors.labels(dependency).inc()
            return JSONResponse({"detail": f"{what} unavailable; retry later"},
                                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                                headers={"Retry-After": "2"})
        return handler

    async def not_found(_: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)

    async def conflict(_: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)

    async def invalid(_: Request, exc: Exception) -> Response:
        # Every invalid field, by location, without echoing the input: it may be personal.
        assert isinstance(exc, RequestValidationError)
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors()]
        return JSONResponse({"detail": detail},
                            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    console.mount(app)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(BrokerUnavailableError, unavailable("message broker", "kafka"))
    app.add_exception_handler(StoreUnavailableError, unavailable("store", "redis"))

    async def worker_behind(_: Request, exc: Exception) -> Response:
        # Not a Redis failure: the look-up would be incomplete (``ingest_api.exposure``).
        log.warning("case look-up refused: %s", exc)
        services.metrics.dependency_errors.labels("worker").inc()
        return JSONResponse({"detail": f"{exc}; retry later"},
                            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": "5"})

    app.add_exception_handler(WorkerBehindError, worker_behind)
    # The one mapping for Redis failures that reach a route unconverted (the alert view in
    # vhc_common, any store call): 503 with Retry-After, never a 500.
    app.add_exception_handler(RedisError, unavailable("store", "redis"))
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(ConflictError, conflict)

    app.add_middleware(CredentialsFirst)
    app.add_middleware(Observe, metrics=services.metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       on_reject=services.metrics.rejected.labels("too_large").inc)
    return app


def run() -> None:
    """Serve on ``VHC_API_HOST:VHC_API_PORT`` (default 127.0.0.1:8000)."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    native.exit_if_stale("vhc-api")  # compiled modules match their sources
    try:
        settings = ApiSettings()
        kafka_security.current()  # VHC_KAFKA_SECURITY_PROTOCOL etc.: checked at start too
    except ValidationError as exc:
        sys.exit(f"vhc-api: invalid settings:\n{settings_errors(exc)}")
    serve(create_app(settings), host=settings.api_host, port=settings.api_port)


def serve(app: Any, *, host: str, port: int) -> None:
    """The server settings every API process runs with (benchmarks use the same)."""
    # uvloop and httptools when installed (uvicorn[standard]); no access log: request
    # counts and latencies are metrics, and query strings (SSE's access_token) stay out
    # of the logs.
    tune_gc()
    uvicorn.run(app, host=host, port=port, timeout_graceful_shutdown=5, log_level="info",
                access_log=False)


if __name__ == "__main__":
    run()

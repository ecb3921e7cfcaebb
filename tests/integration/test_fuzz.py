"""The HTTP API fuzzed against its own OpenAPI document (schemathesis): a few thousand
generated requests, valid and invalid (schemathesis' positive and negative modes), with
and without valid credentials. No answer is a 5xx, and every
refusal is specific: a JSON ``detail`` (for 422, one entry per field with its location)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer
from tests.integration.conftest import INGEST_KEY, STAFF_TOKEN, Api, service_env, start_api

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 120
SKIP = {("GET", "/v1/alerts/stream")}  # an endless event stream: covered by its own tests


@pytest.fixture(scope="module")
def fuzzed(kafka: KafkaBroker, redis_server: RedisServer, worker: ManagedProcess,
           run_dir: Path) -> Iterator[Api]:
    # The session's Redis and worker: case reports wait for the worker to have processed
    # every declaration before them (a Redis database without it would answer 503 after
    # 30 s). Rate limits off, so the requests reach the routes.
    env = service_env(kafka, redis_server, run_dir,
                      VHC_RATE_LIMIT_PER_S="100000", VHC_RATE_LIMIT_BURST="100000",
                      VHC_DECLARATION_RATE_PER_S="1e7", VHC_DECLARATION_BURST="10000000",
                      VHC_UNAUTHENTICATED_RATE_PER_S="100000",
                      VHC_UNAUTHENTICATED_BURST="100000")
    api = start_api(env, run_dir / "api-fuzz.log", wait_ready=True)
    yield api
    api.client.close()
    api.process.stop()


def _specific(answer: httpx.Response) -> str | None:
    """Why a refusal is not specific, or ``None``."""
    try:
        body: Any = answer.json()
    except ValueError:
        return "not JSON"
    detail = body.get("detail") if isinstance(body, dict) else None
    if not detail:
        return "no detail"
    if answer.status_code == 422 and not (
            isinstance(detail, list) and all("loc" in d and "msg" in d for d in detail)):
        return "422 without field locations"
    return None


def fuzz(operation: Any, client: httpx.Client, base_url: str, headers: dict[str, str],
         codes: Counter[int], problems: list[str]) -> None:
    """``EXAMPLES_PER_OPERATION`` generated requests for one operation."""

    @given(case=st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                          operation.as_strategy(schemathesis.GenerationMode.NEGATIVE)),
           anonymous=st.booleans())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    def call(case: schemathesis.Case, anonymous: bool) -> None:
        kwargs = case.as_transport_kwargs(base_url=base_url)
        sent = dict(kwargs.get("headers") or {})
        if not anonymous:  # with valid credentials half the time, generated ones otherwise
            sent = {k: v for k, v in sent.items()
                    if k.lower() not in ("authorization", "x-api-key")} | headers
        answer = client.request(kwargs["method"], kwargs["url"], headers=sent,
                                params=kwargs.get("params"),
                                content=kwargs.get("data") or kwargs.get("content"),
                                json=kwargs.get("json"))
        codes[answer.status_code] += 1
        where = f"{operation.method.upper()} {operation.path} -> {answer.status_code}"
        if answer.status_code >= 500:
            problems.append(f"{where}: {answer.text[:200]}")
        elif answer.status_code >= 400 and (why := _specific(answer)):
            problems.append(f"{where}: {why}: {answer.text[:200]}")

    call()


def test_the_api_survives_its_own_schema(fuzzed: Api) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if (op.method.upper(), op.path) not in SKIP]
    assert len(operations) >= 20
    headers = {"X-API-Key": INGEST_KEY, "Authorization": f"Bearer {STAFF_TOKEN}"}
    codes: Counter[int] = Counter()
    problems: list[str] = []

    staff = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    with httpx.Client(base_url=fuzzed.base_url, timeout=60) as client:
        areas = client.get("/v1/outbreak-areas", headers=staff).json()["areas"]
        try:
            for operation in operations:
                fuzz(operation, client, fuzzed.base_url, headers, codes, problems)
        finally:  # the session's other tests keep the outbreak list they had
            client.put("/v1/outbreak-areas", headers=staff, json={"areas": areas})
    total = sum(codes.values())
    print(f"fuzzed {len(operations)} operations with {total} requests: "
          f"{dict(sorted(codes.items()))}")
    assert total >= 2000
    assert not problems, problems[:20]

"""Input that used to answer 500 (or loop) gets a clear, specific refusal (7/7 review)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from deploy.localsvc import KafkaBroker, RedisServer
from tests.integration.conftest import Api, service_env, start_api

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("params", "field"), [
    ({"since": "2024-01-01T00:00:00"}, "since"),      # naive: no offset
    ({"cursor": "9" * 4301}, "cursor"),               # beyond int()'s digit limit
    ({"cursor": "99999999999999999999"}, "cursor"),
])
def test_alert_listing_refuses_bad_queries(api: Api, params: dict[str, str],
                                           field: str) -> None:
    answer = api.client.get("/v1/alerts", headers=api.staff, params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][-1] == field


def test_a_huge_last_event_id_is_refused_not_looped(api: Api) -> None:
    with api.client.stream("GET", "/v1/alerts/stream", headers={
            **api.staff, "Last-Event-ID": "99999999999999999999-0"}, timeout=5) as answer:
        assert answer.status_code == 422


def test_a_case_time_out_of_range_is_refused_before_anything_is_published(api: Api) -> None:
    answer = api.client.post("/v1/cases", headers=api.staff, json={
        "person": {"phone": "0912345678"}, "confirmed_at": "0001-01-01T00:00:00+14:00"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][-1] == "confirmed_at"


def test_made_up_methods_do_not_grow_the_metrics(api: Api) -> None:
    for i in range(20):
        api.client.request(f"FOO{i}", "/v1/alerts", headers=api.staff)
    metrics = httpx.get(f"{api.base_url}/metrics").text
    methods = set(re.findall(r'method="([^"]*)"', metrics))
    assert methods <= {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other"}
    assert "FOO1" not in metrics


def test_a_chunked_body_over_the_limit_is_413(api: Api) -> None:
    def chunks() -> object:
        for _ in range(40):
            yield b"x" * 65_536  # 2.5 MiB in all, no Content-Length

    answer = api.client.post("/v1/declarations/batch", headers=api.front_end,
                             content=chunks())  # type: ignore[arg-type]
    assert answer.status_code == 413, answer.text


def test_a_small_chunked_body_still_works(api: Api) -> None:
    body = b'{"declarations": [{"declaration_id": "not-an-id"}]}'

    def chunks() -> object:
        yield body[:10]
        yield body[10:]

    answer = api.client.post("/v1/declarations/batch", content=chunks(),  # type: ignore[arg-type]
                             headers={**api.front_end, "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"][0]["status"] == "invalid"
    assert answer.json()["items"][0]["declaration_id"] is None  # not id-shaped: not echoed


def test_requests_without_valid_credentials_are_limited_per_address(
        kafka: KafkaBroker, redis_server: RedisServer, run_dir: Path) -> None:
    env = service_env(kafka, redis_server, run_dir, VHC_UNAUTHENTICATED_RATE_PER_S="0.5",
                      VHC_UNAUTHENTICATED_BURST="5")
    api = start_api(env, run_dir / "api-unauth.log", wait_ready=False)
    try:
        codes = [api.client.get("/v1/alerts", headers={"Authorization": f"Bearer guess-{i}"})
                 .status_code for i in range(12)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
        refused = api.client.post("/v1/declarations", headers={"X-API-Key": "guess"}, json={})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        # Valid credentials from the same address are not held back by the guesses.
        assert api.client.get("/v1/outbreak-areas", headers=api.staff).status_code == 200
    finally:
        api.client.close()
        api.process.stop()


@pytest.mark.parametrize(("path", "headers"), [
    ("/v1/declarations", {"X-API-Key": "not-a-key-0123456789"}),
    ("/v1/declarations/batch", {}),
    ("/v1/checkpoints", {"Authorization": "Bearer not-a-token-0123456789"}),
    ("/v1/cases", {}),
])
def test_credentials_are_checked_before_the_body_is_parsed(
        api: Api, path: str, headers: dict[str, str]) -> None:
    answer = api.client.post(path, headers={**headers, "Content-Type": "application/json"},
                             content=b"{not json at all")
    assert answer.status_code == 401, answer.text  # not 422: the body was never read
    assert answer.headers["WWW-Authenticate"] in {"ApiKey", "Bearer"}


def test_a_batch_costs_as_many_declarations_as_it_holds(
        kafka: KafkaBroker, redis_server: RedisServer, run_dir: Path) -> None:
    env = service_env(kafka, redis_server, run_dir, VHC_DECLARATION_RATE_PER_S="1",
                      VHC_DECLARATION_BURST="600")
    api = start_api(env, run_dir / "api-batch-cost.log", wait_ready=False)
    try:
        batch = {"declarations": [{"declaration_id": "x"}] * 500}
        first = api.client.post("/v1/declarations/batch", headers=api.front_end, json=batch)
        assert first.status_code == 200 and first.json()["invalid"] == 500, first.text
        second = api.client.post("/v1/declarations/batch", headers=api.front_end, json=batch)
        assert second.status_code == 429, second.text  # 100 left: the batch costs 500
        assert int(second.headers["Retry-After"]) >= 300
        rest = api.client.post("/v1/declarations/batch", headers=api.front_end,
                               json={"declarations": [{"declaration_id": "x"}] * 100})
        assert rest.status_code == 200, rest.text  # the 100 left
        one = api.client.post("/v1/declarations/batch", headers=api.front_end,
                              json={"declarations": [{"declaration_id": "x"}]})
        assert one.status_code == 429
    finally:
        api.client.close()
        api.process.stop()


def test_settings_refuse_a_declaration_burst_below_a_full_batch(
        kafka: KafkaBroker, redis_server: RedisServer, run_dir: Path) -> None:
    import subprocess
    import sys

    env = service_env(kafka, redis_server, run_dir, VHC_DECLARATION_BURST="100")
    done = subprocess.run([sys.executable, "-m", "ingest_api.main"], env=env, timeout=60,
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "batch_max_items" in done.stderr

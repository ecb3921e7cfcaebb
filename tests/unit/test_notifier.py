"""Webhook delivery: signature, retry schedule, dead-letter outcome; settings fail fast.
The HTTP side is a real local server (httpx to a ThreadingHTTPServer)."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from streams.notifier import NotifierSettings, WebhookSender, signature

SECRET = b"unit-webhook-secret-0123"


class _Server(ThreadingHTTPServer):
    def __init__(self, codes: list[int]) -> None:
        self.codes = codes
        self.seen: list[tuple[dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((dict(self.headers.items()), body))
        code = self.server.codes.pop(0) if self.server.codes else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[_Server]:
    instance = _Server(list(request.param))
    threading.Thread(target=instance.serve_forever, daemon=True).start()
    yield instance
    instance.shutdown()


def _sender(client: httpx.AsyncClient, sleeps: list[float], attempts: int = 4) -> WebhookSender:
    async def sleep(s: float) -> None:
        sleeps.append(s)

    return WebhookSender(client=client, secret=SECRET, max_attempts=attempts, backoff_s=1.5,
                         sleep=sleep, clock=lambda: 1_700_000_000.0)


def test_signature_is_hmac_over_time_and_body() -> None:
    body = b'{"alert_id":"x"}'
    expected = hmac.new(SECRET, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, body, 1_700_000_000) == f"t=1700000000,v1={expected}"


@pytest.mark.parametrize("server", [[503, 500, 204]], indirect=True)
async def test_retries_with_doubling_back_off_then_delivers(server: _Server) -> None:
    sleeps: list[float] = []
    async with httpx.AsyncClient() as client:
        outcome = await _sender(client, sleeps).deliver(
            f"http://127.0.0.1:{server.server_address[1]}/", b'{"a":1}', "close_contact-1")
    assert outcome.delivered and outcome.attempts == 3
    assert sleeps == [1.5, 3.0]
    headers, body = server.seen[-1]
    assert body == b'{"a":1}' and headers["X-VHC-Delivery"] == "close_contact-1"
    assert headers["X-VHC-Signature"] == signature(SECRET, body, 1_700_000_000)


@pytest.mark.parametrize("server", [[500] * 10], indirect=True)
async def test_gives_up_after_the_last_attempt(server: _Server) -> None:
    sleeps: list[float] = []
    async with httpx.AsyncClient() as client:
        outcome = await _sender(client, sleeps, attempts=3).deliver(
            f"http://127.0.0.1:{server.server_address[1]}/", b"{}", "x")
    assert not outcome.delivered and outcome.attempts == 3 and outcome.error == "HTTP 500"
    assert len(server.seen) == 3 and sleeps == [1.5, 3.0]


async def test_connection_errors_are_retried_and_named() -> None:
    sleeps: list[float] = []
    async with httpx.AsyncClient(timeout=1) as client:
        outcome = await _sender(client, sleeps, attempts=2).deliver(
            "http://127.0.0.1:1/", b"{}", "x")
    assert not outcome.delivered and "ConnectError" in (outcome.error or "")


BASE = {"VHC_KAFKA_BOOTSTRAP": "k:9092", "VHC_REDIS_URL": "redis://r:6379/0",
        "VHC_ENVIRONMENT": "development"}


@pytest.mark.parametrize(("extra", "message"), [
    ({"VHC_WEBHOOK_URLS": "ftp://x"}, "not http"),
    ({"VHC_WEBHOOK_URLS": "https://x.example/h"}, "VHC_WEBHOOK_SECRET is required"),
    ({"VHC_WEBHOOK_SECRET": "short"}, "at least 16 bytes"),
])
def test_settings_fail_fast(monkeypatch: pytest.MonkeyPatch, extra: dict[str, str],
                            message: str) -> None:
    for k, v in (BASE | extra).items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValueError, match=message):
        NotifierSettings()


def test_unset_secret_from_compose_is_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in (BASE | {"VHC_WEBHOOK_URLS": "", "VHC_WEBHOOK_SECRET": ""}).items():
        monkeypatch.setenv(k, v)
    settings = NotifierSettings()
    assert settings.webhook_urls == () and settings.webhook_secret is None

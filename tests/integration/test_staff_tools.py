"""Staff tools on the real system: naming verdicts and alerts, audit, QR codes and posters
(decoded with zbar), the inspection report, and webhooks to a real local HTTP receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer, log_tail
from tests.integration.conftest import Api, good_name, service_env, wait_for
from vhc_common.qr import b64url, verify_payload

pytestmark = pytest.mark.integration

XH, PY = "08749", "08740"


def naming_alerts(api: Api, cid: str) -> list[dict[str, Any]]:
    page = api.client.get("/v1/alerts", headers=api.staff, params={
        "kind": "naming_violation", "checkpoint_id": cid, "limit": 50}).json()
    return list(page["items"])


def test_naming_verdicts_alerts_and_audit(api: Api) -> None:
    cid = f"NM-{uuid.uuid4().hex[:6]}"
    bad = api.client.post("/v1/checkpoints", headers=api.staff, json={
        "checkpoint_id": cid, "name": f"Chợ {cid} - Phường Phúc Yên - Tỉnh Vĩnh Phúc",
        "kind": "market", "ward_code": XH, "address": "<b>Chợ</b> Xuân Hòa"})
    assert bad.status_code == 201, bad.text
    naming = bad.json()["naming"]
    assert naming["conforms"] is False
    assert {v["rule"] for v in naming["violations"]} == {"ward", "province"}
    assert naming["suggestion"] == f"Chợ {cid} - Phường Xuân Hòa - Tỉnh Phú Thọ"
    (alert,) = naming_alerts(api, cid)
    assert alert["severity"] == "warning" and alert["status"] == "open"
    assert alert["evidence"]["suggestion"] == naming["suggestion"]
    # Fixing the name settles the old alert; the verdict conforms.
    fixed = api.client.put(f"/v1/checkpoints/{cid}", headers=api.staff, json={
        "name": naming["suggestion"], "kind": "market", "ward_code": XH,
        "address": "Chợ Xuân Hòa"})
    assert fixed.status_code == 200 and fixed.json()["naming"]["conforms"] is True
    (settled,) = naming_alerts(api, cid)
    assert settled["status"] == "resolved" and settled["history"][-1]["by"] == "system"
    # A near-duplicate is flagged against the first.
    twin = api.client.post("/v1/checkpoints", headers=api.staff, json={
        "name": f"cho {cid.lower()} - phuong xuan hoa - tinh phu tho", "kind": "market",
        "ward_code": XH, "address": "Xuân Hòa"}).json()
    assert "near_duplicate" in {v["rule"] for v in twin["naming"]["violations"]}
    assert cid in json.dumps(twin["naming"]["violations"])
    # Who did what, newest first.
    audit = api.client.get(f"/v1/checkpoints/{cid}/audit", headers=api.staff).json()
    assert [a["action"] for a in audit] == ["checkpoint.update", "checkpoint.create"]
    assert all(a["by"] and a["at"] for a in audit)
    assert "name" in audit[0]["details"]["changed"]


@pytest.mark.parametrize(("body", "field", "kind"), [
    ({"name": "x" * 10_000}, "name", "string_too_long"),
    ({"ward_code": "99999"}, "ward_code", "unknown_ward"),
    ({"ward_code": "٠٨٧٤٩"}, "ward_code", "string_pattern_mismatch"),
])
def test_bad_registrations_are_named(api: Api, body: dict[str, str], field: str,
                                     kind: str) -> None:
    base = {"name": good_name("Chợ", "Thử", XH), "kind": "market", "ward_code": XH,
            "address": "Xuân Hòa"}
    answer = api.client.post("/v1/checkpoints", headers=api.staff, json=base | body)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"][-1] == field and error["type"] == kind


def test_duplicate_ids_conflict(api: Api) -> None:
    cid = f"DUP-{uuid.uuid4().hex[:6]}"
    body = {"checkpoint_id": cid, "name": good_name("Chợ", cid, XH), "kind": "market",
            "ward_code": XH, "address": "Xuân Hòa"}
    assert api.client.post("/v1/checkpoints", headers=api.staff, json=body).status_code == 201
    again = api.client.post("/v1/checkpoints", headers=api.staff, json=body)
    assert again.status_code == 409 and cid in again.json()["detail"]


def test_qr_codes_and_posters_decode_and_verify(api: Api, tmp_path: Path) -> None:
    ward = "08707"
    ids = [f"QR-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for cid in ids:
        assert api.client.post("/v1/checkpoints", headers=api.staff, json={
            "checkpoint_id": cid, "name": good_name("Nhà máy", cid, ward), "kind": "factory",
            "ward_code": ward, "address": "Khu công nghiệp"}).status_code == 201
    keys = api.client.get("/v1/qr/keys").json()["keys"]
    public = {k["key_id"]: base64.urlsafe_b64decode(k["public_key"] + "==") for k in keys}
    assert b64url(next(iter(public.values()))) == keys[0]["public_key"]
    png = api.client.get(f"/v1/checkpoints/{ids[0]}/qr.png", headers=api.staff)
    assert png.headers["content-type"] == "image/png"
    (tmp_path / "qr.png").write_bytes(png.content)
    text = subprocess.run(["zbarimg", "-q", "--raw", str(tmp_path / "qr.png")],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert verify_payload(text, public) == ids[0]
    svg = api.client.get(f"/v1/checkpoints/{ids[0]}/qr.svg", headers=api.staff)
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    poster = api.client.get(f"/v1/checkpoints/{ids[1]}/poster.pdf", headers=api.staff)
    assert poster.headers["content-type"] == "application/pdf"
    (tmp_path / "poster.pdf").write_bytes(poster.content)
    subprocess.run(["pdftoppm", "-r", "100", "-png", str(tmp_path / "poster.pdf"),
                    str(tmp_path / "poster")], check=True)
    text = subprocess.run(["zbarimg", "-q", "--raw", str(tmp_path / "poster-1.png")],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert verify_payload(text, public) == ids[1]
    bulk = api.client.get("/v1/posters", headers=api.staff, params={"ward_code": ward})
    (tmp_path / "ward.pdf").write_bytes(bulk.content)
    info = subprocess.run(["pdfinfo", str(tmp_path / "ward.pdf")], capture_output=True,
                          text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    assert pages >= 2
    assert api.client.get("/v1/posters", headers=api.staff,
                          params={"ward_code": "26446"}).status_code == 404
    assert api.client.get("/v1/checkpoints/NOPE/poster.pdf",
                          headers=api.staff).status_code == 404
    assert api.client.get(f"/v1/checkpoints/{ids[0]}/qr.png").status_code == 401


def test_inspection_report_html_and_pdf(api: Api, tmp_path: Path) -> None:
    cid = f"RP-{uuid.uuid4().hex[:6]}"
    ward = "08740"
    assert api.client.post("/v1/checkpoints", headers=api.staff, json={
        "checkpoint_id": cid, "name": "<script>alert('x')</script>", "kind": "shop",
        "ward_code": ward, "address": "<img src=x onerror=alert(1)>"}).status_code == 201
    today = (datetime.now(UTC) + timedelta(hours=7)).date().isoformat()
    html = api.client.get("/v1/reports/inspection", headers=api.staff,
                          params={"ward_code": ward, "date": today})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    body = html.text
    assert "Phường Phúc Yên" in body and cid in body
    assert "<script>alert" not in body and "&lt;script&gt;alert" in body
    assert "<img src=x" not in body
    assert "Đặt tên theo quy ước" in body and "Khoảng im lặng" in body
    pdf = api.client.get("/v1/reports/inspection", headers={**api.staff,
                         "Accept": "application/pdf"}, params={"ward_code": ward})
    assert pdf.headers["content-type"] == "application/pdf"
    (tmp_path / "r.pdf").write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "BÁO CÁO KIỂM TRA" in text and cid in text
    empty = api.client.get("/v1/reports/inspection", headers=api.staff,
                           params={"ward_code": "26446", "format": "html"})
    assert empty.status_code == 200 and "chưa đăng ký điểm kiểm soát nào" in empty.text
    unknown = api.client.get("/v1/reports/inspection", headers=api.staff,
                             params={"ward_code": "99999"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["type"] == "unknown_ward"


# ------------------------------------------------------------------------- webhooks


class Receiver(ThreadingHTTPServer):
    """A real HTTP server: answers ``fail_first`` requests with 503, then 204."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.requests.append((dict(self.headers.items()), body))
            failing = len(self.server.requests) <= self.server.fail_first
        self.send_response(503 if failing else 204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    flaky, down = Receiver(fail_first=2), Receiver(fail_first=10**6)
    for r in (flaky, down):
        threading.Thread(target=r.serve_forever, daemon=True).start()
    yield flaky, down
    for r in (flaky, down):
        r.shutdown()


def test_critical_alerts_reach_webhooks_signed_with_retries_and_dead_letters(
        kafka: KafkaBroker, redis_server: RedisServer, run_dir: Path,
        receivers: tuple[Receiver, Receiver]) -> None:
    flaky, down = receivers
    secret = "it-webhook-secret-0123456789"
    log = run_dir / "notifier.log"
    env = service_env(kafka, redis_server, run_dir, VHC_WEBHOOK_URLS=f"{flaky.url},{down.url}",
                      VHC_WEBHOOK_SECRET=secret, VHC_WEBHOOK_MAX_ATTEMPTS="3",
                      VHC_WEBHOOK_BACKOFF_S="0.2")
    notifier = ManagedProcess.spawn_module("notifier", "streams.notifier", env, log)
    try:
        wait_for(lambda: "assigned" in log.read_text(), 60, "the notifier's assignment")
        alert_id = f"close_contact-{uuid.uuid4().hex[:24]}"
        now = datetime.now(UTC).isoformat()
        alerts = [{"schema_version": 1, "alert_id": alert_id, "kind": "close_contact",
                   "severity": "critical", "checkpoint_id": "WH-1", "ward_code": XH,
                   "detected_at": now, "summary": {"vi": "Tiếp xúc F0", "en": "F0 contact"},
                   "evidence": {"method": "rule"}},
                  {"schema_version": 1, "alert_id": f"fever-{uuid.uuid4().hex[:24]}",
                   "kind": "fever", "severity": "warning", "checkpoint_id": "WH-1",
                   "detected_at": now, "summary": {"vi": "Sốt", "en": "Fever"},
                   "evidence": {"method": "rule"}}]
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
        for a in [*alerts, alerts[0]]:  # the critical one twice: delivered once
            producer.send("alerts.v1", json.dumps(a).encode(), key=b"WH-1")
        producer.flush()
        producer.close()
        got = wait_for(lambda: len(flaky.requests) >= 3 and flaky.requests, 60,
                       "three attempts at the flaky receiver")
        headers, body = got[-1]
        assert json.loads(body)["alert_id"] == alert_id
        assert headers["X-VHC-Delivery"] == alert_id
        stamp, mac = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})",
                                  headers["X-VHC-Signature"]).groups()  # type: ignore[union-attr]
        assert abs(int(stamp) - time.time()) < 120
        expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body,
                            hashlib.sha256).hexdigest()
        assert hmac.compare_digest(mac, expected)
        consumer = KafkaConsumer("deadletter.v1", bootstrap_servers=kafka.bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=2000)
        dead = wait_for(lambda: [json.loads(r.value) for r in consumer
                                 if b'"source": "webhook"' in r.value
                                 and alert_id.encode() in r.value], 60, "a dead letter")
        consumer.close()
        assert dead[0]["url"] == down.url and dead[0]["attempts"] == 3
        assert dead[0]["error"] == "HTTP 503"
        time.sleep(2)
        assert len(flaky.requests) == 3  # the warning is not sent, the repeat not resent
        assert len(down.requests) == 3
    except AssertionError:
        print(log_tail(log))
        raise
    finally:
        notifier.stop()

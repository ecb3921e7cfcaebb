"""The console and the API docs in real headless Chromium (Debian's, driven by
Playwright): log in, see a new alert arrive live, acknowledge it, switch language, open a
poster and the ward's report. Screenshots land in the test's run directory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer
from tests.integration.conftest import STAFF_TOKEN, Api, good_name, service_env, start_api

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Browser, run_dir: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    yield context.new_page()
    context.close()


def test_api_docs_render_offline(api: Api, page: Page, run_dir: Path) -> None:
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(api.base_url) else None)
    page.goto(f"{api.base_url}/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    assert page.locator(".opblock").count() >= 20
    page.screenshot(path=run_dir / "docs.png")
    assert outside == []  # nothing from a CDN


def test_console_end_to_end(api: Api, page: Page, run_dir: Path) -> None:
    shots = run_dir / "screenshots"
    shots.mkdir(exist_ok=True)
    ward = "08749"
    cid = f"UI-{uuid.uuid4().hex[:6]}"
    assert api.client.post("/v1/checkpoints", headers=api.staff, json={
        "checkpoint_id": cid, "name": good_name("Cửa hàng", cid, ward), "kind": "shop",
        "ward_code": ward, "address": "<b>Số 1</b> Hai Bà Trưng"}).status_code == 201
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{api.base_url}/")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.locator("#login-title")).to_have_text("Đăng nhập cán bộ")
    page.fill("#token", "wrong-token-0123456789")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).not_to_be_empty()
    page.fill("#token", STAFF_TOKEN)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#live")).to_have_class("live on", timeout=15_000)
    page.screenshot(path=shots / "1-logged-in.png")

    # A declaration with an F0 contact: its critical alert appears without a reload.
    declaration_id = str(uuid.uuid4())
    answer = api.client.post("/v1/declarations", headers=api.front_end, json={
        "declaration_id": declaration_id, "checkpoint_id": cid,
        "scanned_at": datetime.now(UTC).isoformat(), "person": {"id_number": "123456789"},
        "contact": "f0"})
    assert answer.status_code == 202, answer.text
    item = page.locator(f'#alerts li[data-severity="critical"]:has-text("{cid}")').first
    expect(item).to_be_visible(timeout=30_000)
    expect(item).to_have_class("sev-critical fresh")
    page.screenshot(path=shots / "2-live-alert.png")

    item.locator("button.row").click()
    expect(page.locator("#detail")).to_contain_text(declaration_id)
    page.fill("#note", "<script>alert('x')</script> đã gọi điện")
    page.click("#ack")
    expect(page.locator("#detail ol li")).to_contain_text("Đã tiếp nhận", timeout=10_000)
    expect(page.locator("#detail ol li .meta")).to_have_text(
        "<script>alert('x')</script> đã gọi điện")  # shown as text, never run
    page.screenshot(path=shots / "3-acknowledged.png")
    alert_id = item.get_attribute("data-alert-id")
    stored = api.client.get(f"/v1/alerts/{alert_id}", headers=api.staff).json()
    assert stored["status"] == "acknowledged"

    page.click("#lang")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#tab-alerts")).to_have_text("Alerts")
    expect(page.locator("#resolve")).to_have_text("Resolve")
    page.screenshot(path=shots / "4-english.png")

    page.click("#tab-checkpoints")
    row = page.locator(f'#cp-table tr[data-checkpoint-id="{cid}"]')
    expect(row).to_be_visible(timeout=15_000)
    expect(row).to_contain_text("<b>Số 1</b> Hai Bà Trưng")  # the address as typed, as text
    row.locator("button.audit").click()
    expect(page.locator("tr.audit-row")).to_contain_text("Registered")  # who and when
    page.screenshot(path=shots / "5-checkpoints.png")
    with page.context.expect_page() as popup:
        row.locator("button.poster").click()
    poster = popup.value
    assert poster.url.startswith("blob:")
    poster.close()

    page.click("#tab-wards")
    ward_row = page.locator(f'#ward-table tr[data-ward-code="{ward}"]')
    expect(ward_row).to_be_visible()
    ward_row.locator("button.ward-report").click()
    frame = page.frame_locator("#report-frame")
    expect(frame.locator("h1")).to_have_text("Báo cáo kiểm tra điểm kiểm soát khai báo y tế",
                                             timeout=15_000)
    expect(frame.locator("body")).to_contain_text(cid)
    page.screenshot(path=shots / "6-report.png", full_page=True)
    assert errors == []


VIEWER_TOKEN = "viewer-token-0123456789abcdef"


@pytest.fixture(scope="module")
def viewer_api(kafka: KafkaBroker, redis_server: RedisServer, worker: ManagedProcess,
               run_dir: Path) -> Iterator[Api]:
    env = service_env(kafka, redis_server, run_dir,
                      VHC_STAFF_TOKENS=f"{STAFF_TOKEN},{VIEWER_TOKEN}:viewer:08749")
    instance = start_api(env, run_dir / "api-viewer.log", wait_ready=True)
    yield instance
    instance.client.close()
    instance.process.stop()


def test_a_viewer_sees_its_scope_and_cannot_act(viewer_api: Api, page: Page,
                                                run_dir: Path) -> None:
    """A scoped viewer's console says who it is and where, and offers no acknowledge or
    resolve on an alert (the API refuses them too: ``test_access``)."""
    api = viewer_api
    cid = f"UI-{uuid.uuid4().hex[:6]}"
    assert api.client.post("/v1/checkpoints", headers=api.staff, json={
        "checkpoint_id": cid, "name": good_name("Cửa hàng", cid, "08749"), "kind": "shop",
        "ward_code": "08749", "address": "Số 2"}).status_code == 201
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{api.base_url}/")
    page.fill("#token", VIEWER_TOKEN)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text("Xem · 08749")
    expect(page.locator("#live")).to_have_class("live on", timeout=15_000)
    answer = api.client.post("/v1/declarations", headers=api.front_end, json={
        "declaration_id": str(uuid.uuid4()), "checkpoint_id": cid,
        "scanned_at": datetime.now(UTC).isoformat(), "person": {"id_number": "223456789"},
        "contact": "f0"})
    assert answer.status_code == 202, answer.text
    item = page.locator(f'#alerts li[data-severity="critical"]:has-text("{cid}")').first
    expect(item).to_be_visible(timeout=30_000)
    item.locator("button.row").click()
    expect(page.locator("#read-only")).to_be_visible()
    assert page.locator("#ack").count() == 0 and page.locator("#resolve").count() == 0
    page.screenshot(path=run_dir / "viewer.png")
    assert errors == []

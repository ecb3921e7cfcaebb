"""Roles and area scopes (contract v1.1) against the real API, broker, Redis and worker:
each token sees and acts only within its role and area; every refusal is a 403."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from deploy.localsvc import KafkaBroker, ManagedProcess, RedisServer
from tests.integration.conftest import (
    INGEST_KEY,
    STAFF_TOKEN,
    Api,
    good_name,
    service_env,
    wait_for,
)
from tests.integration.conftest import start_api as spawn_api
from tests.integration.test_alerts import SseReader
from vhc_common import redis_keys

pytestmark = pytest.mark.integration

WARD_A, WARD_B = "08749", "00004"  # Xuân Hòa (Phú Thọ, 25); Ba Đình (Hà Nội, 01)
SUFFIX = uuid.uuid4().hex[:6]
CP_A, CP_B = f"ACC-A-{SUFFIX}", f"ACC-B-{SUFFIX}"
TOKENS = {
    "viewer_a": "access-viewer-ward-a-0123456789",
    "responder_25": "access-responder-prov-0123456789",
    "officer": "access-officer-all-0123456789",
    "admin_a": "access-admin-ward-a-0123456789",
}
KEY_A = "access-key-ward-a-0123456789"


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


@pytest.fixture(scope="module")
def scoped(kafka: KafkaBroker, redis_server: RedisServer, worker: ManagedProcess,
           run_dir: Path) -> Iterator[Api]:
    staff = ",".join([STAFF_TOKEN, f"{TOKENS['viewer_a']}:viewer:{WARD_A}",
                      f"{TOKENS['responder_25']}:responder:25",
                      f"{TOKENS['officer']}:case_officer:*",
                      f"{TOKENS['admin_a']}:admin:{WARD_A}"])
    env = service_env(kafka, redis_server, run_dir, VHC_STAFF_TOKENS=staff,
                      VHC_INGEST_KEYS=f"{INGEST_KEY},{KEY_A}:{WARD_A}")
    api = spawn_api(env, run_dir / "api-access.log", wait_ready=True)
    for cid, ward in ((CP_A, WARD_A), (CP_B, WARD_B)):
        made = api.client.post("/v1/checkpoints", headers=api.staff, json={
            "checkpoint_id": cid, "name": good_name("Cửa hàng", cid, ward), "kind": "shop",
            "ward_code": ward, "address": "Số 1"})
        assert made.status_code == 201, made.text
    yield api
    api.client.close()
    api.process.stop()


def fever(cid: str, person: str) -> dict[str, Any]:
    return {"declaration_id": str(uuid.uuid4()), "checkpoint_id": cid,
            "scanned_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "person": {"id_number": person}, "temperature_c": 38.6, "symptoms": ["fever"]}


def alert_of(api: Api, cid: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        page = api.client.get("/v1/alerts", headers=api.staff,
                              params={"checkpoint_id": cid, "limit": 500}).json()
        return page["items"][0] if page["items"] else None
    found: dict[str, Any] = wait_for(find, 60, f"an alert at {cid}")
    return found


def test_me_tells_role_and_area(scoped: Api) -> None:
    answers = {name: scoped.client.get("/v1/me", headers=bearer(name)).json()
               for name in TOKENS}
    assert {n: (a["role"], a["area"]) for n, a in answers.items()} == {
        "viewer_a": ("viewer", WARD_A), "responder_25": ("responder", "25"),
        "officer": ("case_officer", "*"), "admin_a": ("admin", WARD_A)}
    plain = scoped.client.get("/v1/me", headers=scoped.staff).json()
    assert (plain["role"], plain["area"]) == ("admin", "*")
    assert all(TOKENS[n] not in str(a) for n, a in answers.items())


def test_a_scoped_key_ingests_only_in_its_area(scoped: Api) -> None:
    key = {"X-API-Key": KEY_A}
    outside = scoped.client.post("/v1/declarations", headers=key, json=fever(CP_B, "100000001"))
    assert outside.status_code == 403, outside.text
    inside = scoped.client.post("/v1/declarations", headers=key, json=fever(CP_A, "100000002"))
    assert inside.status_code == 202, inside.text
    items = [fever(CP_A, "100000003"), fever(CP_B, "100000004"), fever(CP_B, "100000005")]
    batch = scoped.client.post("/v1/declarations/batch", headers=key,
                               json={"declarations": items})
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert [i["status"] for i in body["items"]] == ["accepted", "forbidden", "forbidden"]
    assert (body["accepted"], body["forbidden"]) == (1, 2)
    # The unrestricted key reaches both; what was refused was never claimed or published.
    retry = scoped.client.post("/v1/declarations", headers=scoped.front_end, json=items[1])
    assert retry.status_code == 202, retry.text


def test_views_and_actions_are_scoped(scoped: Api) -> None:
    for cid, person in ((CP_A, "100000010"), (CP_B, "100000011")):
        answer = scoped.client.post("/v1/declarations", headers=scoped.front_end,
                                    json=fever(cid, person))
        assert answer.status_code == 202
    in_a, in_b = alert_of(scoped, CP_A), alert_of(scoped, CP_B)
    viewer = bearer("viewer_a")

    listed = scoped.client.get("/v1/alerts", headers=viewer, params={"limit": 500}).json()
    wards = {a.get("ward_code") for a in listed["items"]}
    assert wards == {WARD_A}, wards
    assert scoped.client.get("/v1/alerts", headers=viewer,
                             params={"ward_code": WARD_B}).status_code == 403
    assert scoped.client.get(f"/v1/alerts/{in_a['alert_id']}", headers=viewer).status_code == 200
    assert scoped.client.get(f"/v1/alerts/{in_b['alert_id']}", headers=viewer).status_code == 403

    checkpoints = scoped.client.get("/v1/checkpoints", headers=viewer,
                                    params={"limit": 500}).json()["items"]
    assert CP_A in {c["checkpoint_id"] for c in checkpoints}
    assert {c["ward_code"] for c in checkpoints} == {WARD_A}
    overview = scoped.client.get("/v1/overview", headers=viewer).json()
    assert {w["ward_code"] for w in overview["wards"]} == {WARD_A}
    for path in (f"/v1/checkpoints/{CP_B}", f"/v1/checkpoints/{CP_B}/stats",
                 f"/v1/checkpoints/{CP_B}/audit", f"/v1/checkpoints/{CP_B}/qr.svg",
                 f"/v1/checkpoints/{CP_B}/poster.pdf", f"/v1/overview?ward_code={WARD_B}",
                 f"/v1/reports/inspection?ward_code={WARD_B}",
                 f"/v1/reports/under-used?ward_code={WARD_B}",
                 f"/v1/posters?ward_code={WARD_B}"):
        answer = scoped.client.get(path, headers=viewer)
        assert answer.status_code == 403, (path, answer.status_code, answer.text)
    for path in (f"/v1/checkpoints/{CP_A}", f"/v1/checkpoints/{CP_A}/stats",
                 f"/v1/reports/inspection?ward_code={WARD_A}"):
        assert scoped.client.get(path, headers=viewer).status_code == 200, path

    # Roles: a viewer may not acknowledge; a responder may, in its province only.
    ack = f"/v1/alerts/{in_a['alert_id']}/ack"
    assert scoped.client.post(ack, headers=viewer, json={}).status_code == 403
    done = scoped.client.post(ack, headers=bearer("responder_25"), json={"note": "on it"})
    assert done.status_code == 200 and done.json()["status"] == "acknowledged"
    other = scoped.client.post(f"/v1/alerts/{in_b['alert_id']}/resolve",
                               headers=bearer("responder_25"), json={})
    assert other.status_code == 403
    assert scoped.client.get(f"/v1/alerts/{in_b['alert_id']}",
                             headers=scoped.staff).json()["status"] == "open"


def test_registry_and_outbreak_areas_need_an_admin_in_the_area(scoped: Api) -> None:
    def new(ward: str) -> dict[str, Any]:
        cid = f"ACC-N-{uuid.uuid4().hex[:8]}"
        return {"checkpoint_id": cid, "name": good_name("Cửa hàng", cid, ward), "kind": "shop",
                "ward_code": ward, "address": "Số 2"}

    admin_a = bearer("admin_a")
    assert scoped.client.post("/v1/checkpoints", headers=bearer("officer"),
                              json=new(WARD_A)).status_code == 403
    assert scoped.client.post("/v1/checkpoints", headers=admin_a,
                              json=new(WARD_B)).status_code == 403
    made = scoped.client.post("/v1/checkpoints", headers=admin_a, json=new(WARD_A))
    assert made.status_code == 201, made.text
    moved = {**made.json(), "ward_code": WARD_B}
    moved = {k: moved[k] for k in ("name", "kind", "ward_code", "address")}
    assert scoped.client.put(f"/v1/checkpoints/{made.json()['checkpoint_id']}",
                             headers=admin_a, json=moved).status_code == 403
    assert scoped.client.put(f"/v1/checkpoints/{CP_B}", headers=admin_a,
                             json={**moved, "ward_code": WARD_B}).status_code == 403
    assert scoped.client.put("/v1/outbreak-areas", headers=bearer("responder_25"),
                             json={"areas": ["X1"]}).status_code == 403
    assert scoped.client.get("/v1/outbreak-areas", headers=bearer("viewer_a")).status_code == 200


def test_only_case_officers_report_cases_and_each_report_is_audited(
        scoped: Api, redis_server: RedisServer) -> None:
    visit = scoped.client.post("/v1/declarations", headers=scoped.front_end,
                               json=fever(CP_A, "100000030"))
    assert visit.status_code == 202
    case = {"person": {"id_number": "100000030"},
            "confirmed_at": datetime.now(UTC).isoformat()}
    for name in ("viewer_a", "responder_25"):
        assert scoped.client.post("/v1/cases", headers=bearer(name), json=case).status_code == 403
    answer = scoped.client.post("/v1/cases", headers=bearer("officer"), json=case)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["visits"] >= 1 and len(body["alert_ids"]) == body["visits"]
    assert CP_A not in answer.text  # counts and ids, not the itinerary
    client = redis.Redis.from_url(redis_server.url)
    try:
        audited = client.lrange(redis_keys.audit("case", body["case_id"]), 0, -1)
    finally:
        client.close()
    assert any(b"case.report" in a and b"case_officer" in a for a in audited), audited


def test_the_stream_carries_only_the_area(scoped: Api) -> None:
    reader = SseReader(Api(scoped.base_url, scoped.process))
    reader.headers = bearer("viewer_a")
    reader.start()
    assert reader.connected.wait(10)
    for cid, person in ((CP_B, "100000020"), (CP_A, "100000021")):
        answer = scoped.client.post("/v1/declarations", headers=scoped.front_end,
                                    json=fever(cid, person))
        assert answer.status_code == 202
    wait_for(lambda: any(CP_A in e["data"] for e in reader.events), 60, "the area's alert")
    alert_of(scoped, CP_B)  # raised and stored by now: the stream had its chance
    reader.stop = True
    assert not any(CP_B in e["data"] for e in reader.events)


def test_cors_is_closed_and_the_console_has_security_headers(api: Api) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    preflight = api.client.options("/v1/alerts", headers={
        **origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert "access-control-allow-origin" not in preflight.headers
    read = api.client.get("/v1/alerts", headers={**api.staff, **origin})
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers
    page = api.client.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-eval'" not in csp and "*" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"

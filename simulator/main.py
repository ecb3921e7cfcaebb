"""A small traffic generator for ``make up``: a newcomer sees numbers move.

It registers a handful of checkpoints in Phúc Yên (the wards of the 2021 inspection) if
they are missing, then sends batches of plausible declarations through the public API,
with the same key and token any front end or staff member would use. Most declarants are
well; a few report symptoms, fever or contacts. Realistic daily shapes and outbreaks are
the job of the simulation tooling, not of this generator.
"""

from __future__ import annotations

import logging
import random
import signal
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SEED_CHECKPOINTS", "SimulatorSettings", "declaration", "run"]

log = logging.getLogger("vhc.simulator")

SEED_CHECKPOINTS: list[dict[str, Any]] = [
    {"checkpoint_id": "PY-XH-UBND", "name": "UBND phường Xuân Hòa - Cổng chính",
     "kind": "office", "ward_code": "08749", "address": "Đường Hai Bà Trưng, Xuân Hòa",
     "opening_hours": ["07:00-11:30", "13:30-17:00"]},
    {"checkpoint_id": "PY-XH-CHO", "name": "Chợ Xuân Hòa - Cổng A", "kind": "market",
     "ward_code": "08749", "address": "Chợ Xuân Hòa, phường Xuân Hòa"},
    {"checkpoint_id": "PY-PY-SIEUTHI", "name": "Siêu thị Phúc Yên - Lối vào",
     "kind": "supermarket", "ward_code": "08740", "address": "Đường Trần Phú, Phúc Yên",
     "opening_hours": ["08:00-22:00"]},
    {"checkpoint_id": "PY-PY-BENHVIEN", "name": "Bệnh viện đa khoa Phúc Yên - Khoa khám",
     "kind": "hospital", "ward_code": "08740", "address": "Phường Phúc Yên"},
    {"checkpoint_id": "VY-VY-KCN", "name": "Nhà máy KCN Vĩnh Yên - Cổng 2",
     "kind": "factory", "ward_code": "08707", "address": "Khu công nghiệp, Vĩnh Yên"},
]


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VHC_SIM_", extra="ignore")

    api_url: str = "http://127.0.0.1:8000"
    ingest_key: str = Field(min_length=16)
    staff_token: str = Field(min_length=16)
    rate_per_s: float = Field(default=5.0, gt=0, le=5000)
    people: int = Field(default=2000, ge=1)
    seed: int | None = None


def declaration(rng: random.Random, checkpoint_id: str, person: int,
                scanned_at: datetime) -> dict[str, Any]:
    """One plausible declaration of simulated person ``person``."""
    symptoms: list[str] = []
    if rng.random() < 0.05:
        symptoms = rng.sample(["fever", "cough", "sore_throat", "fatigue",
                               "shortness_of_breath", "loss_of_taste_or_smell"],
                              k=rng.choice([1, 1, 2]))
    temperature = round(rng.gauss(36.6, 0.35), 1)
    contact = rng.choices(["none", "f1", "f0", "suspected"], [0.985, 0.01, 0.002, 0.003])[0]
    return {
        "declaration_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "checkpoint_id": checkpoint_id,
        "scanned_at": scanned_at.isoformat(),
        "person": {"id_number": f"{person:012d}", "birth_year": 1950 + person % 55},
        "temperature_c": min(max(temperature, 30.0), 45.0),
        "symptoms": symptoms,
        "contact": contact,
        "travel_from": ["79"] if rng.random() < 0.02 else [],
    }


def ensure_checkpoints(client: httpx.Client, staff_token: str) -> list[str]:
    headers = {"Authorization": f"Bearer {staff_token}"}
    ids = []
    for cp in SEED_CHECKPOINTS:
        got = client.get(f"/v1/checkpoints/{cp['checkpoint_id']}", headers=headers)
        if got.status_code == 404:
            made = client.post("/v1/checkpoints", json=cp, headers=headers)
            made.raise_for_status()
        else:
            got.raise_for_status()
        ids.append(cp["checkpoint_id"])
    areas = client.get("/v1/outbreak-areas", headers=headers)
    areas.raise_for_status()
    if not areas.json()["areas"]:
        # Travellers from "79" (the simulated outbreak province) then raise alerts.
        client.put("/v1/outbreak-areas", headers=headers,
                   json={"areas": ["79"]}).raise_for_status()
    return ids


def run() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = SimulatorSettings()
    except ValidationError as exc:
        sys.exit(f"vhc-simulate: invalid settings:\n{exc}")
    rng = random.Random(settings.seed)
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with httpx.Client(base_url=settings.api_url, timeout=10) as client:
        while not stop:
            try:
                checkpoints = ensure_checkpoints(client, settings.staff_token)
                break
            except httpx.HTTPError as exc:
                log.info("waiting for the API: %s", exc)
                time.sleep(1)
        headers = {"X-API-Key": settings.ingest_key}
        sent = 0
        tick_s = 1.0
        while not stop:
            started = time.monotonic()
            n = max(1, round(rng.expovariate(1 / (settings.rate_per_s * tick_s))))
            now = datetime.now(UTC)
            batch = [declaration(rng, rng.choice(checkpoints), rng.randrange(settings.people),
                                 now - timedelta(seconds=rng.uniform(0, 2)))
                     for _ in range(n)]
            try:
                answer = client.post("/v1/declarations/batch", json={"declarations": batch},
                                     headers=headers)
                if answer.status_code >= 400:
                    log.warning("batch answered %s: %s", answer.status_code, answer.text[:300])
                else:
                    sent += answer.json()["accepted"]
            except httpx.HTTPError as exc:
                log.warning("batch failed: %s", exc)
            if sent and sent % 100 < n:
                log.info("%d declarations accepted so far", sent)
            time.sleep(max(0.0, tick_s - (time.monotonic() - started)))


if __name__ == "__main__":
    run()

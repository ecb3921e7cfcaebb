"""QR payloads round-trip and verify; a forged or altered one does not. The poster is A4,
its code at least 15 x 15 cm, and it decodes (pdftoppm + zbarimg, both real tools)."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest_api.printing import poster_pdf, qr_png, qr_svg
from vhc_common.qr import QrPayloadError, QrSigner, b64url, parse_payload, verify_payload
from vhc_common.schemas import CheckpointEvent, CheckpointKind

SIGNER = QrSigner(bytes(range(32)))
KEYS = {SIGNER.key_id: SIGNER.public_raw}


def _cp(checkpoint_id: str = "PY-XH-CHO", name: str = "Chợ Xuân Hòa - Phường Xuân Hòa - "
        "Tỉnh Phú Thọ", address: str = "Chợ Xuân Hòa, đường Nguyễn Tất Thành") -> CheckpointEvent:
    now = datetime.now(UTC)
    return CheckpointEvent(checkpoint_id=checkpoint_id, name=name, kind=CheckpointKind.MARKET,
                           ward_code="08749", ward_name="Phường Xuân Hòa", province_code="25",
                           province_name="Tỉnh Phú Thọ", address=address, created_at=now,
                           updated_at=now)


@pytest.mark.parametrize("checkpoint_id", ["PY-XH-CHO", "a", "A.b_c-9" * 9, "x" * 64])
def test_payload_round_trip(checkpoint_id: str) -> None:
    payload = SIGNER.payload(checkpoint_id)
    assert payload.startswith("VHC1:")
    assert verify_payload(payload, KEYS) == checkpoint_id
    assert parse_payload(payload).key_id == SIGNER.key_id


def test_forged_and_altered_codes_fail() -> None:
    payload = SIGNER.payload("PY-XH-CHO")
    forger = QrSigner(b"\x01" * 32)
    forged = forger.payload("PY-XH-CHO").replace(forger.key_id, SIGNER.key_id)
    with pytest.raises(QrPayloadError, match="forged"):
        verify_payload(forged, KEYS)
    moved = payload.replace("PY-XH-CHO", "PY-XH-CH0")
    with pytest.raises(QrPayloadError, match="forged"):
        verify_payload(moved, KEYS)
    with pytest.raises(QrPayloadError, match="unknown signing key"):
        verify_payload(forger.payload("PY-XH-CHO"), KEYS)
    for junk in ["", "https://example.com", "VHC1:a:b:c", payload + "x", "VHC2" + payload[4:]]:
        with pytest.raises(QrPayloadError):
            verify_payload(junk, KEYS)


def test_derived_signer_is_stable_and_separate_from_its_secret() -> None:
    a, b = QrSigner.derived(b"s" * 20), QrSigner.derived(b"s" * 20)
    assert a.public_raw == b.public_raw
    assert a.public_raw != QrSigner.derived(b"t" * 20).public_raw
    assert b64url(a.public_raw) == a.public_key_b64url


def test_svg_and_png_are_what_they_say() -> None:
    svg = qr_svg(SIGNER.payload("PY-XH-CHO"))
    assert svg.startswith(b"<?xml") and b"<svg" in svg
    assert qr_png(SIGNER.payload("PY-XH-CHO")).startswith(b"\x89PNG")


def test_poster_is_a4_with_a_big_code_that_decodes(tmp_path: Path) -> None:
    cp = _cp(name="<script>alert('x')</script> " + "Chợ Xuân Hòa " * 20,
             address="Số 1 <b>Nguyễn Tất Thành</b> " * 10)
    pdf = tmp_path / "poster.pdf"
    pdf.write_bytes(poster_pdf([(cp, SIGNER.payload(cp.checkpoint_id))]))
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    assert re.search(r"Pages:\s+1\b", info.stdout)
    assert "595.28 x 841.89 pts (A4)" in info.stdout
    # The code's printed size: the image's pixels over its resolution, less its quiet zone
    # (2 modules of 10 px on each side).
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                             check=True).stdout.splitlines()[2:]
    (row,) = [line.split() for line in listing]
    width_px, ppi = int(row[3]), int(row[12])
    symbol_mm = (width_px - 40) / ppi * 25.4
    assert symbol_mm >= 150, symbol_mm
    subprocess.run(["pdftoppm", "-r", "100", "-png", str(pdf), str(tmp_path / "page")],
                   check=True)
    found = subprocess.run(["zbarimg", "-q", "--raw", str(tmp_path / "page-1.png")],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert verify_payload(found, KEYS) == "PY-XH-CHO"
    # The name is drawn as text, not run: the words of the markup are on the page.
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "<script>alert('x')</script>" in text


def test_a_ward_prints_into_one_pdf(tmp_path: Path) -> None:
    cps = [_cp(f"CP-{i}") for i in range(3)]
    pdf = tmp_path / "ward.pdf"
    pdf.write_bytes(poster_pdf([(cp, SIGNER.payload(cp.checkpoint_id)) for cp in cps]))
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    assert re.search(r"Pages:\s+3\b", info.stdout)
    subprocess.run(["pdftoppm", "-r", "100", "-png", "-f", "3", "-l", "3", str(pdf),
                    str(tmp_path / "p")], check=True)
    (page,) = tmp_path.glob("p-*.png")
    found = subprocess.run(["zbarimg", "-q", "--raw", str(page)], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert verify_payload(found, KEYS) == "CP-2"


def test_nothing_to_print_is_an_error() -> None:
    with pytest.raises(ValueError, match="no checkpoint"):
        poster_pdf([])

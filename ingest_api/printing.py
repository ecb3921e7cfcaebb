"""QR codes (segno) and printable A4 posters (fpdf2) for checkpoints.

A poster carries the code at 160 x 160 mm (the contract asks for at least 15 x 15 cm, so
it scans from a couple of metres), the checkpoint's name and address and short
instructions in Vietnamese. Text is drawn with DejaVu Sans (Debian's
``fonts-dejavu-core``), which has every Vietnamese letter. Nothing here interprets
markup: names and addresses are drawn as text.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import segno
from fpdf import FPDF

from ingest_api.errors import IngestApiError
from vhc_common.schemas import CheckpointEvent

__all__ = ["QR_SIZE_MM", "FontMissingError", "poster_pdf", "qr_png", "qr_svg", "unicode_pdf"]

QR_SIZE_MM = 160.0
A4_MM = (210.0, 297.0)
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))

INSTRUCTIONS_VI = (
    "1. Mở ứng dụng khai báo y tế và quét mã QR này.",
    "2. Khai báo trung thực: triệu chứng, tiếp xúc, nơi đi qua.",
    "3. Xuất trình màn hình xác nhận cho người kiểm soát.",
)


class FontMissingError(IngestApiError):
    """No Unicode font for Vietnamese text (install Debian's ``fonts-dejavu-core``)."""


@cache
def _font_files() -> tuple[Path, Path]:
    for directory in FONT_DIRS:
        regular, bold = directory / "DejaVuSans.ttf", directory / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    raise FontMissingError("DejaVu Sans not found in " + ", ".join(map(str, FONT_DIRS))
                           + "; install Debian's fonts-dejavu-core")


def unicode_pdf(*, orientation: str = "portrait") -> FPDF:
    """An A4 document with DejaVu Sans as ``sans`` (regular and bold)."""
    regular, bold = _font_files()
    pdf = FPDF(orientation=orientation, unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("sans", "", str(regular))
    pdf.add_font("sans", "B", str(bold))
    pdf.set_font("sans", size=11)
    return pdf


def _qr(payload: str) -> segno.QRCode:
    return segno.make_qr(payload, error="m")


def qr_svg(payload: str) -> bytes:
    buf = io.BytesIO()
    _qr(payload).save(buf, kind="svg", scale=8, border=4, xmldecl=True,
                      title="vhc-watch checkpoint")
    return buf.getvalue()


def qr_png(payload: str, *, scale: int = 10, border: int = 4) -> bytes:
    buf = io.BytesIO()
    _qr(payload).save(buf, kind="png", scale=scale, border=border)
    return buf.getvalue()


def poster_pdf(posters: Sequence[tuple[CheckpointEvent, str]] | Iterable[
        tuple[CheckpointEvent, str]]) -> bytes:
    """One A4 page per ``(checkpoint, code text)``."""
    pdf = unicode_pdf()
    pdf.set_title("Mã QR khai báo y tế")
    pdf.set_creator("vhc-watch")
    pages = 0
    for checkpoint, payload in posters:
        _poster_page(pdf, checkpoint, payload)
        pages += 1
    if pages == 0:
        raise ValueError("no checkpoint to print")
    return bytes(pdf.output())


def _poster_page(pdf: FPDF, cp: CheckpointEvent, payload: str) -> None:
    pdf.add_page()
    width = A4_MM[0] - pdf.l_margin - pdf.r_margin
    pdf.set_auto_page_break(auto=False)
    pdf.set_y(12)
    pdf.set_font("sans", "B", 26)
    pdf.cell(width, 12, "KHAI BÁO Y TẾ", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("sans", "", 12)
    pdf.cell(width, 6, "Quét mã trước khi vào · Scan before entering", align="C",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("sans", "B", 15)
    pdf.multi_cell(width, 7, _clip(cp.name, 160), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("sans", "", 11)
    pdf.multi_cell(width, 5.5, _clip(cp.address, 200), align="C", new_x="LMARGIN",
                   new_y="NEXT")
    # The symbol itself (not counting its quiet zone) is QR_SIZE_MM wide; a two-module
    # quiet zone in the image plus the white paper around it keep it readable.
    modules = _qr(payload).symbol_size(border=0)[0]
    side = QR_SIZE_MM * (modules + 4) / modules
    top = max(pdf.get_y() + 1, 48.0)
    pdf.image(io.BytesIO(qr_png(payload, border=2)), x=(A4_MM[0] - side) / 2, y=top,
              w=side, h=side)
    pdf.set_y(top + side + 2)
    pdf.set_font("sans", "", 11.5)
    for line in INSTRUCTIONS_VI:
        pdf.cell(width, 6.5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.set_font("sans", "", 8.5)
    pdf.multi_cell(width, 4.2, f"Mã điểm: {cp.checkpoint_id} · {cp.ward_name}, "
                   f"{cp.province_name}. Mã QR có chữ ký số: ứng dụng quét sẽ báo nếu mã bị "
                   "làm giả hoặc sửa đổi.", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_auto_page_break(auto=True, margin=15)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"

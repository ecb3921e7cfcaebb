"""The inspection report, per ward and local day (UTC+7), in Vietnamese: what the 2021
inspectors compiled by hand.

1. checkpoints registered; 2. naming compliance (each name judged now, against the rule
and registry in force); 3. declarations per checkpoint against peers of the same kind in
the ward, the under-used ones named (``detectors.underuse``); 4. silent periods
(``checkpoint_silent`` alerts of the day); 5. abnormal declarations (per-declaration
alerts, counted by kind and severity) and every other alert with its status.

``build`` gathers the numbers; ``render_html`` (Jinja2, autoescaped) and ``render_pdf``
(fpdf2, text only) present the same ``Inspection``. Nothing a person typed is ever
interpreted as markup.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from redis.exceptions import RedisError

from detectors.underuse import under_used
from ingest_api.errors import StoreUnavailableError
from ingest_api.naming import NamingService
from ingest_api.printing import unicode_pdf
from ingest_api.store import CheckpointStore, StatsStore, checkpoint_days
from vhc_common.alert_view import AlertView
from vhc_common.schemas import CheckpointEvent, NamingVerdict
from vhc_common.timebase import LOCAL_OFFSET
from vhc_common.wards import WardInfo

__all__ = ["Inspection", "build", "render_html", "render_pdf"]

LOCAL = LOCAL_OFFSET
PER_DECLARATION = {"symptomatic_declaration", "fever", "close_contact",
                   "travel_from_outbreak_area"}
ALERT_SCAN_MAX = 50_000
KIND_VI = {
    "symptomatic_declaration": "Khai báo có triệu chứng", "fever": "Sốt",
    "close_contact": "Tiếp xúc gần", "travel_from_outbreak_area": "Đi về từ vùng dịch",
    "symptom_cluster": "Cụm ca có triệu chứng", "symptom_aberration": "Tăng bất thường",
    "volume_surge": "Lượng khai báo tăng đột biến", "checkpoint_silent": "Điểm im lặng",
    "exposure": "Phơi nhiễm", "naming_violation": "Đặt tên sai quy ước",
}
STATUS_VI = {"open": "Mới", "acknowledged": "Đã tiếp nhận", "resolved": "Đã xử lý"}
SEVERITY_VI = {"info": "Thông tin", "warning": "Cảnh báo", "critical": "Nghiêm trọng"}


@dataclass(frozen=True)
class CheckpointRow:
    checkpoint_id: str
    name: str
    kind: str
    address: str
    registered: str
    naming: NamingVerdict
    declarations: int
    peer_median: float | None
    under_used: bool


@dataclass(frozen=True)
class AlertRow:
    alert_id: str
    kind: str
    severity: str
    status: str
    checkpoint_id: str | None
    detected_at: str
    summary: str
    note: str | None


@dataclass
class Inspection:
    ward: WardInfo
    day: date
    generated_at: datetime
    checkpoints: list[CheckpointRow] = field(default_factory=list)
    silences: list[AlertRow] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)
    per_declaration: dict[tuple[str, str], int] = field(default_factory=dict)
    alerts_scanned_all: bool = True

    @property
    def conforming(self) -> int:
        return sum(1 for c in self.checkpoints if c.naming.conforms)

    @property
    def declarations(self) -> int:
        return sum(c.declarations for c in self.checkpoints)

    @property
    def under_used(self) -> list[CheckpointRow]:
        return [c for c in self.checkpoints if c.under_used]


def _local(ts: str) -> datetime:
    return datetime.fromisoformat(ts).astimezone(UTC) + LOCAL


def _row(alert: dict[str, Any]) -> AlertRow:
    history = alert.get("history") or []
    return AlertRow(
        alert_id=alert["alert_id"], kind=alert["kind"], severity=alert["severity"],
        status=alert["status"], checkpoint_id=alert.get("checkpoint_id"),
        detected_at=_local(alert["detected_at"]).strftime("%H:%M"),
        summary=alert["summary"]["vi"],
        note=history[-1].get("note") if history else None)


async def build(*, ward: WardInfo, day: date, checkpoints: CheckpointStore,
                naming: NamingService, alerts: AlertView, stats: StatsStore,
                under_use_ratio: float = 0.25) -> Inspection:
    report = Inspection(ward=ward, day=day, generated_at=datetime.now(UTC))
    day_end_utc = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) - LOCAL
    registry = [cp for cp in await checkpoints.all(ward_code=ward.code)
                if cp.created_at < day_end_utc]
    ids = {cp.checkpoint_id for cp in registry}
    totals = await stats.daily_totals(day)
    usage = {u.checkpoint_id: u for u in under_used(checkpoint_days(registry, totals),
                                                    ratio=under_use_ratio)}
    names = await naming.names()
    for cp in registry:
        report.checkpoints.append(_checkpoint_row(cp, naming, names, totals, registry,
                                                  usage))
    await _alerts(report, alerts, ids, day)
    return report


def _checkpoint_row(cp: CheckpointEvent, naming: NamingService, names: dict[str, str],
                    totals: dict[str, int], registry: list[CheckpointEvent],
                    usage: dict[str, Any]) -> CheckpointRow:
    peers = [totals.get(p.checkpoint_id, 0) for p in registry
             if p.kind == cp.kind and p.checkpoint_id != cp.checkpoint_id]
    median = statistics.median(peers) if peers else None
    return CheckpointRow(
        checkpoint_id=cp.checkpoint_id, name=cp.name, kind=cp.kind.value,
        address=cp.address, registered=(cp.created_at + LOCAL).strftime("%d/%m/%Y"),
        naming=naming.verdict(cp.name, kind=cp.kind.value, ward_code=cp.ward_code,
                              checkpoint_id=cp.checkpoint_id, others=names),
        declarations=totals.get(cp.checkpoint_id, 0),
        peer_median=float(median) if median is not None else None,
        under_used=cp.checkpoint_id in usage)


async def _alerts(report: Inspection, alerts: AlertView, ids: set[str], day: date) -> None:
    before: int | None = None
    scanned = 0
    counts: Counter[tuple[str, str]] = Counter()
    stop_before = day - timedelta(days=2)  # alerts arrive roughly in detection order
    try:
        while scanned < ALERT_SCAN_MAX:
            page = await alerts.page(before_seq=before, batch=500)
            if not page:
                break
            older = 0
            for seq, alert in page:
                before, scanned = seq, scanned + 1
                if not alert:
                    continue
                local_day = _local(alert["detected_at"]).date()
                older += local_day < stop_before
                if local_day != day or not (alert.get("ward_code") == report.ward.code
                                            or alert.get("checkpoint_id") in ids):
                    continue
                if alert["kind"] in PER_DECLARATION:
                    counts[(alert["kind"], alert["severity"])] += 1
                    if alert["severity"] == "info":
                        continue
                row = _row(alert)
                (report.silences if alert["kind"] == "checkpoint_silent"
                 else report.alerts).append(row)
            if older == len(page):
                break
        else:
            report.alerts_scanned_all = False
    except RedisError as exc:
        raise StoreUnavailableError(f"redis: {exc}") from exc
    report.per_declaration = dict(sorted(counts.items()))
    report.alerts.sort(key=lambda a: a.detected_at)
    report.silences.sort(key=lambda a: a.detected_at)


_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   trim_blocks=True, lstrip_blocks=True)


def render_html(report: Inspection) -> str:
    return _ENV.get_template("inspection.html").render(
        r=report, kind_vi=KIND_VI, status_vi=STATUS_VI, severity_vi=SEVERITY_VI,
        generated_local=(report.generated_at + LOCAL).strftime("%H:%M %d/%m/%Y"))


def render_pdf(report: Inspection) -> bytes:
    pdf = unicode_pdf()
    pdf.set_title(f"Báo cáo kiểm tra {report.ward.name} {report.day:%d/%m/%Y}")
    pdf.set_creator("vhc-watch")
    pdf.add_page()
    pdf.set_font("sans", "B", 15)
    pdf.multi_cell(0, 8, "BÁO CÁO KIỂM TRA ĐIỂM KIỂM SOÁT KHAI BÁO Y TẾ", new_x="LMARGIN",
                   new_y="NEXT")
    pdf.set_font("sans", "", 11)
    pdf.multi_cell(0, 6, f"{report.ward.name} ({report.ward.code}), {report.ward.province_name}"
                   f" · Ngày {report.day:%d/%m/%Y} · Lập lúc "
                   f"{(report.generated_at + LOCAL):%H:%M %d/%m/%Y} (giờ Việt Nam)",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    def heading(text: str) -> None:
        pdf.ln(2)
        pdf.set_font("sans", "B", 12.5)
        pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("sans", "", 9.5)

    def table(head: tuple[str, ...], rows: list[tuple[str, ...]],
              widths: tuple[int, ...]) -> None:
        if not rows:
            pdf.multi_cell(0, 6, "Không có.", new_x="LMARGIN", new_y="NEXT")
            return
        with pdf.table(col_widths=widths, text_align="LEFT", line_height=5,
                       first_row_as_headings=True) as t:
            for row in [head, *rows]:
                r = t.row()
                for value in row:
                    r.cell(value)

    heading(f"1. Điểm kiểm soát đã đăng ký: {len(report.checkpoints)}")
    if not report.checkpoints:
        pdf.multi_cell(0, 6, "Phường/xã chưa đăng ký điểm kiểm soát nào.", new_x="LMARGIN",
                       new_y="NEXT")
    table(("Mã điểm", "Tên", "Loại", "Địa chỉ", "Đăng ký"),
          [(c.checkpoint_id, c.name, c.kind, c.address, c.registered)
           for c in report.checkpoints], (22, 60, 18, 50, 20))
    heading(f"2. Đặt tên theo quy ước: {report.conforming}/{len(report.checkpoints)} đạt")
    table(("Mã điểm", "Vi phạm", "Tên gợi ý"),
          [(c.checkpoint_id, "; ".join(v.message_vi for v in c.naming.violations),
            c.naming.suggestion) for c in report.checkpoints if not c.naming.conforms],
          (25, 85, 60))
    heading(f"3. Lượt khai báo trong ngày: {report.declarations} · dùng ít so với điểm cùng "
            f"loại: {len(report.under_used)}")
    table(("Mã điểm", "Tên", "Khai báo", "Trung vị cùng loại", "Dùng ít"),
          [(c.checkpoint_id, c.name, str(c.declarations),
            "—" if c.peer_median is None else f"{c.peer_median:g}",
            "CÓ" if c.under_used else "") for c in report.checkpoints],
          (25, 75, 20, 30, 20))
    heading(f"4. Khoảng im lặng: {len(report.silences)}")
    table(("Giờ", "Mã điểm", "Mô tả", "Trạng thái"),
          [(a.detected_at, a.checkpoint_id or "", a.summary, STATUS_VI[a.status])
           for a in report.silences], (15, 25, 105, 25))
    heading("5. Trường hợp bất thường và cảnh báo")
    table(("Loại", "Mức", "Số lượng"),
          [(KIND_VI.get(k, k), SEVERITY_VI.get(s, s), str(n))
           for (k, s), n in report.per_declaration.items()], (80, 50, 40))
    pdf.ln(2)
    table(("Giờ", "Loại", "Mức", "Mã điểm", "Mô tả", "Trạng thái"),
          [(a.detected_at, KIND_VI.get(a.kind, a.kind), SEVERITY_VI[a.severity],
            a.checkpoint_id or "", a.summary + (f" — Ghi chú: {a.note}" if a.note else ""),
            STATUS_VI[a.status]) for a in report.alerts], (13, 28, 20, 22, 67, 20))
    if not report.alerts_scanned_all:
        pdf.multi_cell(0, 6, f"Chỉ xét {ALERT_SCAN_MAX} cảnh báo gần nhất.", new_x="LMARGIN",
                       new_y="NEXT")
    return bytes(pdf.output())

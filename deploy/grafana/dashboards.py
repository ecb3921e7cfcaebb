"""The Grafana dashboards, as code (grafana-foundation-sdk builders).

``python -m deploy.grafana.dashboards`` writes ``deploy/grafana/dashboards/*.json``, the
files Grafana's provisioning loads; a test checks that the committed files are what this
module builds, that every query parses (promtool) and names metrics the services export,
and, against a real Prometheus scraping the running services, that each returns data.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos, VariableRefresh

__all__ = ["DASHBOARDS", "DATASOURCE_UID", "Query", "build", "main", "queries"]

DATASOURCE_UID = "vhc-prometheus"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
OUT_DIR = Path(__file__).resolve().parent / "dashboards"
WARD = '{ward_code=~"$ward"}'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat"
    description: str = ""


def _panel(spec: PanelSpec, pos: GridPos, panel_id: int) -> timeseries.Panel | stat.Panel:
    panel = timeseries.Panel() if spec.kind == "timeseries" else stat.Panel()
    panel.id(panel_id).title(spec.title).datasource(DATASOURCE).unit(spec.unit).grid_pos(pos)
    if spec.description:
        panel.description(spec.description)
    for i, q in enumerate(spec.queries):
        panel.with_target(prometheus.Dataquery().expr(q.expr).legend_format(q.legend)
                          .ref_id(chr(ord("A") + i)).datasource(DATASOURCE))
    return panel


def _dashboard(uid: str, title: str, description: str, panels: list[PanelSpec],
               *, ward_variable: bool) -> db.Dashboard:
    board = (db.Dashboard(title).uid(uid).description(description)
             .tags(["vhc-watch"]).refresh("30s").time("now-6h", "now")
             .timezone("Asia/Ho_Chi_Minh").editable())
    if ward_variable:
        board.with_variable(
            db.QueryVariable("ward").label("Phường/xã (ward)").datasource(DATASOURCE)
            .query("label_values(vhc_ward_declarations_total, ward_code)")
            .multi(True).include_all(True).all_value(".*")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED))
    width, height = 12, 8
    for i, spec in enumerate(panels):
        w = 6 if spec.kind == "stat" else width
        pos = GridPos(h=height if spec.kind != "stat" else 4, w=w, x=0, y=0)
        board.with_panel(_panel(spec, pos, i + 1))
    return board


def _layout(board: dict[str, object]) -> dict[str, object]:
    """Place panels left to right, top to bottom, with no overlap."""
    x = y = row_h = 0
    for panel in board["panels"]:  # type: ignore[attr-defined]
        pos = panel["gridPos"]
        if x + pos["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        pos["x"], pos["y"] = x, y
        x += pos["w"]
        row_h = max(row_h, pos["h"])
    return board


OPERATIONS = [
    PanelSpec("Declarations received by outcome", (
        Query("sum by (outcome) (rate(vhc_ingest_declarations_total[5m]))", "{{outcome}}"),),
        unit="reqps"),
    PanelSpec("API request latency p95 by route", (
        Query("histogram_quantile(0.95, sum by (le, route) "
              "(rate(vhc_api_request_duration_seconds_bucket[5m])))", "{{route}}"),),
        unit="s"),
    PanelSpec("Publish to Kafka, p50 and p99", (
        Query("histogram_quantile(0.5, sum by (le) "
              "(rate(vhc_ingest_publish_duration_seconds_bucket[5m])))", "p50"),
        Query("histogram_quantile(0.99, sum by (le) "
              "(rate(vhc_ingest_publish_duration_seconds_bucket[5m])))", "p99")), unit="s"),
    PanelSpec("API responses by status class", (
        Query("sum by (status) (rate(vhc_api_requests_total[5m]))", "{{status}}"),),
        unit="reqps"),
    PanelSpec("Worker records by outcome", (
        Query("sum by (outcome) (rate(vhc_worker_records_total[5m]))", "{{outcome}}"),),
        unit="ops"),
    PanelSpec("Consumer lag by topic and partition", (
        Query("sum by (topic, partition) (vhc_worker_consumer_lag_records)",
              "{{topic}}[{{partition}}]"),), unit="short"),
    PanelSpec("Event-time lag (scanned to processed), p50 and p95", (
        Query("histogram_quantile(0.5, sum by (le) "
              "(rate(vhc_worker_event_time_lag_seconds_bucket[5m])))", "p50"),
        Query("histogram_quantile(0.95, sum by (le) "
              "(rate(vhc_worker_event_time_lag_seconds_bucket[5m])))", "p95")), unit="s"),
    PanelSpec("Worker batch duration p95", (
        Query("histogram_quantile(0.95, sum by (le) "
              "(rate(vhc_worker_batch_duration_seconds_bucket[5m])))", "p95"),), unit="s"),
    PanelSpec("Errors: publish, dependencies, refused", (
        Query("sum by (topic) (rate(vhc_ingest_publish_errors_total[5m]))", "publish {{topic}}"),
        Query("sum by (dependency) (rate(vhc_api_dependency_errors_total[5m]))",
              "{{dependency}}"),
        Query("sum by (reason) (rate(vhc_api_rejected_total[5m]))", "refused: {{reason}}")),
        unit="ops"),
    PanelSpec("Dead letters and webhook deliveries", (
        Query("sum by (topic) (rate(vhc_worker_dead_letters_total[15m]))",
              "dead letters {{topic}}"),
        Query("sum by (outcome) (rate(vhc_notifier_deliveries_total[15m]))",
              "webhook {{outcome}}")), unit="ops"),
    PanelSpec("Open alert streams (SSE clients)", (
        Query("sum(vhc_api_sse_clients)", "streams"),), kind="stat"),
    PanelSpec("Workers up", (Query('sum(up{job="vhc-worker"})', "workers"),), kind="stat"),
    PanelSpec("Processes scraped", (Query("sum by (job) (up)", "{{job}}"),), kind="stat"),
    PanelSpec("Alerts waiting unacknowledged (oldest)", (
        Query('max(vhc_alerts_oldest_unacknowledged_seconds{severity="critical"})',
              "critical"),), unit="s", kind="stat"),
]

SURVEILLANCE = [
    PanelSpec("Declarations per hour by ward", (
        Query(f"sum by (ward_code) (rate(vhc_ward_declarations_total{WARD}[1h])) * 3600",
              "{{ward_code}}"),), unit="short"),
    PanelSpec("Symptomatic share by ward (1 h)", (
        Query(f"sum by (ward_code) (rate(vhc_ward_symptomatic_declarations_total{WARD}[1h])) "
              f"/ (sum by (ward_code) (rate(vhc_ward_declarations_total{WARD}[1h])) > 0)",
              "{{ward_code}}"),), unit="percentunit"),
    PanelSpec("Alerts raised by kind and severity (per hour)", (
        Query('sum by (kind, severity) (rate({__name__=~"vhc_(worker|api)_alerts_total"}[1h]))'
              " * 3600", "{{kind}} {{severity}}"),), unit="short"),
    PanelSpec("Alerts not yet resolved", (
        Query("max by (severity, status) (vhc_alerts_open)", "{{severity}} {{status}}"),),
        unit="short"),
    PanelSpec("Silent checkpoints by ward", (
        Query('max by (ward_code) (vhc_ward_checkpoints{state="silent", ward_code=~"$ward"})',
              "{{ward_code}}"),), unit="short",
        description="Checkpoints with an unresolved checkpoint_silent alert."),
    PanelSpec("Under-used checkpoints by ward (yesterday)", (
        Query('max by (ward_code) (vhc_ward_checkpoints{state="under_used", '
              'ward_code=~"$ward"})', "{{ward_code}}"),), unit="short"),
    PanelSpec("Checkpoints active in the last hour, of registered", (
        Query('sum(max by (ward_code) (vhc_ward_checkpoints{state="active", '
              'ward_code=~"$ward"}))', "active"),
        Query('sum(max by (ward_code) (vhc_ward_checkpoints{state="registered", '
              'ward_code=~"$ward"}))', "registered")), kind="stat"),
    PanelSpec("Checkpoints named against the convention", (
        Query('sum(max by (ward_code) (vhc_ward_checkpoints{state="misnamed", '
              'ward_code=~"$ward"}))', "misnamed"),), kind="stat"),
]

DASHBOARDS = {
    "operations": ("vhc-operations", "vhc-watch · Operations",
                   "Ingest, Kafka, workers: rates, latency, lag, errors, dead letters.",
                   OPERATIONS, False),
    "surveillance": ("vhc-surveillance", "vhc-watch · Giám sát (surveillance)",
                     "Declarations and symptomatic share by ward, alerts, silent and "
                     "under-used checkpoints.", SURVEILLANCE, True),
}


def _no_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value]
    return value


def build(name: str) -> dict[str, object]:
    uid, title, description, panels, ward = DASHBOARDS[name]
    board = _dashboard(uid, title, description, panels, ward_variable=ward).build()
    encoded = _no_nulls(json.loads(json.dumps(board, cls=JSONEncoder)))
    assert isinstance(encoded, dict)
    return _layout(encoded)


def queries(board: dict[str, object]) -> list[str]:
    """Every panel query's PromQL, with the ward variable as its 'all' value."""
    out = []
    for panel in board["panels"]:  # type: ignore[attr-defined]
        for target in panel.get("targets", []):
            out.append(target["expr"].replace("$ward", ".*"))
    return out


def render(name: str) -> str:
    return json.dumps(build(name), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> int:
    OUT_DIR.mkdir(exist_ok=True)
    for name in DASHBOARDS:
        (OUT_DIR / f"{name}.json").write_text(render(name), encoding="utf-8")
        print(f"wrote {OUT_DIR / f'{name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

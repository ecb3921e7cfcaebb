"""Prometheus rules, scrape config and Grafana dashboards, checked with the real
`promtool` and the Grafana SDK's models: rules behave (promtool's rule unit tests), every
panel query parses and names only metrics the services export, the committed dashboards
are what the code builds, and compose, scrape config and provisioning agree."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard

from deploy.grafana import dashboards
from ingest_api.metrics import ApiMetrics
from streams.metrics import WorkerMetrics
from streams.notifier import NotifierMetrics
from tests.unit.test_deploy_files import SECRETS, compose_config

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
PROMTOOL = shutil.which("promtool")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, "promtool (Debian package prometheus) is installed by `make deps`"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False,
                          cwd=ROOT)


def exported() -> set[str]:
    """Every sample name the API, the worker and the notifier export, plus Prometheus's own
    ``up``."""
    names = {"up"}
    for registry in (ApiMetrics().registry, WorkerMetrics().registry,
                     NotifierMetrics().registry):
        for family in registry.collect():
            # A labelled family without label values yet has no samples: name its series
            # by type, as the exposition format will once it has some.
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                        "gauge": ("",)}[family.type]
            names.update(family.name + suffix for suffix in suffixes)
            names.update(s.name for s in family.samples)
    return names


def recorded() -> set[str]:
    rules = yaml.safe_load((PROM / "rules" / "vhc.yml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def referenced(expr: str) -> tuple[set[str], list[str]]:
    """Metric names in an expression, and ``__name__`` regexes."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    names = set(re.findall(r"\b(vhc[a-z0-9_:]*|up)\b", without_labels))
    return names, re.findall(r'__name__=~"([^"]+)"', expr)


def all_queries() -> list[tuple[str, str]]:
    return [(name, q) for name in dashboards.DASHBOARDS
            for q in dashboards.queries(dashboards.build(name))]


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(PROM / "tests" / "vhc_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_and_scrape_config_are_valid() -> None:
    rules = promtool("check", "rules", str(PROM / "rules" / "vhc.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = promtool("check", "config", "--syntax-only", str(PROM / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


def test_rules_name_only_exported_or_recorded_metrics() -> None:
    known = exported() | recorded()
    rules = yaml.safe_load((PROM / "rules" / "vhc.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            names, regexes = referenced(rule["expr"])
            assert names <= known, (rule.get("alert") or rule.get("record"), names - known)
            for rx in regexes:
                assert any(re.fullmatch(rx, n) for n in known), rx


@pytest.mark.parametrize(("board", "expr"), all_queries())
def test_every_panel_query_names_exported_metrics(board: str, expr: str) -> None:
    known = exported()
    names, regexes = referenced(expr)
    assert names or regexes, expr
    assert names <= known, names - known
    for rx in regexes:
        assert [n for n in known if re.fullmatch(rx, n)], rx


def test_every_panel_query_parses(tmp_path: Path) -> None:
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"vhc_panel_check_{i}", "expr": expr}
        for i, (_, expr) in enumerate(all_queries())]}]}
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules['groups'][0]['rules'])} rules found" in result.stdout


@pytest.mark.parametrize("name", sorted(dashboards.DASHBOARDS))
def test_committed_dashboards_are_what_the_code_builds(name: str) -> None:
    committed = (GRAFANA / "dashboards" / f"{name}.json").read_text(encoding="utf-8")
    assert committed == dashboards.render(name), \
        "run `python -m deploy.grafana.dashboards` and commit the JSON"


@pytest.mark.parametrize("name", sorted(dashboards.DASHBOARDS))
def test_dashboards_are_structurally_valid(name: str) -> None:
    raw = json.loads((GRAFANA / "dashboards" / f"{name}.json").read_text(encoding="utf-8"))
    model = Dashboard.from_json(raw)  # the SDK's model of Grafana's dashboard schema
    assert model.title and model.uid == dashboards.DASHBOARDS[name][0]
    assert model.panels and len(model.panels) == len(raw["panels"])
    ids = [p["id"] for p in raw["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in raw["panels"]:
        assert panel["type"] in {"timeseries", "stat"}
        assert panel["datasource"] == {"type": "prometheus", "uid": dashboards.DATASOURCE_UID}
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"])
    if name == "surveillance":
        (ward,) = raw["templating"]["list"]
        assert ward["name"] == "ward" and "ward_code" in ward["query"]
        assert all("$ward" in t["expr"] for p in raw["panels"] for t in p["targets"]
                   if "ward" in t["expr"])


def test_provisioning_names_the_dashboards_datasource() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
                        .read_text())
    (source,) = ds["datasources"]
    assert source["uid"] == dashboards.DATASOURCE_UID and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"


def test_compose_and_scrape_config_agree() -> None:
    config = yaml.safe_load(compose_config(SECRETS).stdout)
    services = config["services"]
    scrape = yaml.safe_load((PROM / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in scrape["scrape_configs"]}
    (api_target,) = jobs["vhc-api"]["static_configs"][0]["targets"]
    host, port = api_target.split(":")
    assert host == "api" and services["api"]["environment"]["VHC_API_PORT"] == port
    worker = jobs["vhc-worker"]["dns_sd_configs"][0]
    assert worker["names"] == ["worker"]
    assert str(worker["port"]) == services["worker"]["environment"]["VHC_METRICS_PORT"]
    assert services["worker"]["deploy"]["replicas"] == 2
    (notifier_target,) = jobs["vhc-notifier"]["static_configs"][0]["targets"]
    host, port = notifier_target.split(":")
    assert host == "notifier"
    assert services["notifier"]["environment"]["VHC_NOTIFIER_METRICS_PORT"] == port
    mounts = _mounts(services["prometheus"])
    assert mounts["/etc/prometheus/prometheus.yml"].endswith("deploy/prometheus/prometheus.yml")
    assert scrape["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert mounts["/etc/prometheus/rules"].endswith("deploy/prometheus/rules")
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "vhc.yml").read_text())
    grafana = _mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"].endswith("deploy/grafana/provisioning")
    assert provider["providers"][0]["options"]["path"] in grafana
    for name in ("kafka-data", "redis-data", "prometheus-data", "grafana-data"):
        assert name in config["volumes"]
    for name in ("kafka", "redis", "worker", "api", "prometheus", "grafana"):
        assert "healthcheck" in services[name], name


def _mounts(service: dict[str, object]) -> dict[str, str]:
    """Container path -> source of a service's volumes (short or long syntax)."""
    out = {}
    for v in service["volumes"]:  # type: ignore[attr-defined]
        if isinstance(v, str):
            source, target = v.split(":")[:2]
        else:
            source, target = v["source"], v["target"]
        out[target] = source
    return out

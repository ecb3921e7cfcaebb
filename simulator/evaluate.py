"""``evaluate``, ``compare`` and ``calibrate``: scenarios through the pipeline, scored.

* ``evaluate``: each seed's scenario through the real system (broker, worker, API;
  ``simulator.live``), or in process with ``--offline``; every alert scored against the
  truth (``simulator.score``); a Markdown table and a JSON file of results.
* ``compare``: the ``symptom_aberration`` methods side by side on the same scenarios
  (offline), each at several thresholds: sensitivity, false alarms and delay, as a table
  and a PNG plot of detection delay against false alarms.
* ``calibrate``: scenarios without injected events (offline): the false alarms of every
  detector kind per 100 series-days on ordinary traffic, against its budget.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from detectors.aberration import AberrationParams
from simulator.compare import MultiMethod, Variant
from simulator.offline import run_offline
from simulator.scenario import ARMED_FROM_DAY, Scenario, ScenarioConfig, build_scenario
from simulator.score import BASELINE_KINDS, Score, score_alerts
from simulator.traffic import TrafficConfig
from streams.app import Detectors

__all__ = ["EVENT_COLUMNS", "SeedRun", "calibrate", "compare", "evaluate", "markdown_report"]

EVENT_COLUMNS = (("checkpoint_outbreak", "outbreak"), ("ward_rise", "ward rise"),
                 ("silence", "silence"), ("surge", "surge"),
                 ("backlog_surge", "backlog surge"))


@dataclass
class SeedRun:
    seed: int
    scenario: Scenario
    alerts: list[dict[str, Any]]
    score: Score
    seconds: float
    mode: str
    extra: dict[str, Any] = field(default_factory=dict)


def _scenario(seed: int, days: int, checkpoints: int, wards: int, inject: bool = True,
              **kwargs: Any) -> Scenario:
    return build_scenario(ScenarioConfig(
        traffic=TrafficConfig(seed=seed, days=days, checkpoints=checkpoints, wards=wards),
        inject=inject, **kwargs))


def _progress(total: int, label: str) -> tqdm[Any]:
    """A progress bar on a terminal; a line every half minute in a log."""
    tty = sys.stderr.isatty()
    return tqdm(total=total, desc=label, unit="decl", unit_scale=True, leave=tty,
                dynamic_ncols=True, mininterval=0.5 if tty else 30.0)


def evaluate(seeds: Sequence[int], *, days: int, checkpoints: int, wards: int,
             detectors: Detectors, offline: bool, out: Path,
             live_runner: Callable[[Scenario, Callable[[int], object]], dict[str, Any]] | None
             = None) -> list[SeedRun]:
    """Each seed's scenario, run and scored; results written under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in seeds:
        scenario = _scenario(seed, days, checkpoints, wards)
        scenario.write_truth(out / f"truth-{seed}.json")
        bar = _progress(len(scenario.declarations), f"seed {seed}")
        started = time.perf_counter()
        extra: dict[str, Any] = {}
        if offline:
            result = run_offline(scenario, cluster=detectors.cluster, volume=detectors.volume,
                                 aberration=detectors.aberration,
                                 ward_aberration=detectors.ward_aberration,
                                 progress=bar.update)
            alerts = result.alerts
        else:
            if live_runner is None:
                raise ValueError("a live run needs a live runner")
            extra = live_runner(scenario, bar.update)
            alerts = extra.pop("alerts")
        bar.close()
        seconds = time.perf_counter() - started
        score = score_alerts(scenario.truth(), alerts)
        runs.append(SeedRun(seed, scenario, alerts, score, seconds,
                            "offline" if offline else "live", extra))
        (out / f"alerts-{seed}.json").write_text(json.dumps(alerts, ensure_ascii=False))
    (out / "results.json").write_text(json.dumps([_summary(r) for r in runs], indent=2,
                                                 ensure_ascii=False))
    (out / "report.md").write_text(markdown_report(runs))
    return runs


def _summary(run: SeedRun) -> dict[str, Any]:
    s = run.score
    return {
        "seed": run.seed, "mode": run.mode, "seconds": round(run.seconds, 1),
        "province": run.scenario.plan.province_name,
        "declarations": len(run.scenario.declarations),
        "armed_checkpoint_days": s.checkpoint_days,
        "false_alarms": s.false_alarms, "false_alarms_per_100": round(s.fa_per_100, 3),
        "false_alarms_by_kind": dict(s.false_alarms_by_kind),
        "cold_start_clusters": s.cold_start_clusters,
        "events": [{"event": e.event_id, "kind": e.kind, "found": e.found,
                    "delay_h": None if e.delay_h is None else round(e.delay_h, 2)}
                   for e in s.events],
        "exposure_exact": s.exposure_exact, "exposure": s.exposure_detail,
        "alerts_by_kind": dict(s.alerts_by_kind), "unexplained": s.unexplained,
        **run.extra,
    }


def _fmt_delay(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} h"


def markdown_report(runs: list[SeedRun]) -> str:
    """One row per seed and a pooled row: false alarms, sensitivity, delays, exposure."""
    lines = [
        "| seed | province | armed cp-days | false alarms / 100 cp-days (by kind) | "
        "events found | " + " | ".join(f"delay: {label}" for _, label in EVENT_COLUMNS)
        + " | exposure |",
        "|---|---|---|---|---|" + "---|" * len(EVENT_COLUMNS) + "---|",
    ]
    for r in runs:
        s = r.score
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(s.false_alarms_by_kind.items()))
        scored = [e for e in s.events if e.kind != "backlog"]
        delays = [_fmt_delay(s.delay(kind)) for kind, _ in EVENT_COLUMNS]
        exposure = {True: "exact", False: "WRONG", None: "n/a"}[s.exposure_exact]
        lines.append(
            f"| {r.seed} | {r.scenario.plan.province_name} | {s.checkpoint_days:.0f} | "
            f"{s.fa_per_100:.2f} ({kinds or 'none'}) | "
            f"{sum(e.found for e in scored)}/{len(scored)} | " + " | ".join(delays)
            + f" | {exposure} |")
    if len(runs) > 1:
        days = sum(r.score.checkpoint_days for r in runs)
        fas = sum(r.score.false_alarms for r in runs)
        found = sum(e.found for r in runs for e in r.score.events if e.kind != "backlog")
        total = sum(1 for r in runs for e in r.score.events if e.kind != "backlog")
        pooled = []
        for kind, _ in EVENT_COLUMNS:
            d = [e.delay_h for r in runs for e in r.score.events
                 if e.kind == kind and e.delay_h is not None]
            pooled.append(f"median {_fmt_delay(statistics.median(d) if d else None)}, "
                          f"p90 {_fmt_delay(_p90(d))}")
        exact = [r.score.exposure_exact for r in runs if r.score.exposure_exact is not None]
        lines.append(
            f"| **all** | {len(runs)} seeds | {days:.0f} | **{100 * fas / days:.2f}** | "
            f"**{found}/{total}** ({100 * found / total:.0f} %) | "
            + " | ".join(pooled)
            + f" | {'exact' if exact and all(exact) else 'n/a' if not exact else 'WRONG'} |")
    return "\n".join(lines) + "\n"


def _p90(delays: list[float]) -> float | None:
    """The 90th percentile by nearest rank (the delay 90 % of events beat or equal)."""
    if not delays:
        return None
    ranked = sorted(delays)
    return ranked[max(0, math.ceil(0.9 * len(ranked)) - 1)]


# ------------------------------------------------------------------ compare


@dataclass
class VariantResult:
    variant: Variant
    false_alarms: int
    checkpoint_days: float
    found: int
    events: int
    delays: list[float]

    @property
    def fa_per_100(self) -> float:
        return 100 * self.false_alarms / self.checkpoint_days

    @property
    def median_delay(self) -> float | None:
        return statistics.median(self.delays) if self.delays else None


DEFAULT_VARIANTS = (
    [Variant("llr_cusum", b) for b in (0.05, 0.15, 0.5, 1.5)]
    + [Variant("negbin", b) for b in (0.05, 0.15, 0.5, 1.5)]
    + [Variant("cusum", h) for h in (4.0, 6.0, 8.0, 11.0)]
    + [Variant("ears_c1", c) for c in (3.0, 4.0, 5.0, 7.0)]
    + [Variant("ears_c2", c) for c in (3.0, 4.0, 5.0, 7.0)]
    + [Variant("ears_c3", c) for c in (2.0, 4.0, 6.0, 9.0)]
)


def compare(seeds: Sequence[int], *, days: int, checkpoints: int, wards: int,
            detectors: Detectors, variants: Sequence[Variant], out: Path) -> list[VariantResult]:
    """Every variant on the same scenarios, scored on the aberration events (ward rises and
    checkpoint outbreaks) and on its own false alarms."""
    out.mkdir(parents=True, exist_ok=True)
    multi = MultiMethod(list(variants))
    tallies = {v.name: VariantResult(v, 0, 0.0, 0, 0, []) for v in variants}
    for seed in seeds:
        scenario = _scenario(seed, days, checkpoints, wards)
        bar = _progress(len(scenario.declarations), f"compare seed {seed}")
        result = run_offline(scenario, cluster=detectors.cluster, volume=detectors.volume,
                             aberration=multi, ward_aberration=multi, progress=bar.update)
        bar.close()
        truth = scenario.truth()
        for v in variants:
            mine = [a for a in result.alerts if a["kind"] != "symptom_aberration"
                    or a["evidence"]["method"] == v.name]
            # Score this variant alone: other kinds are left to explain nothing here.
            only = [a for a in mine if a["kind"] == "symptom_aberration"]
            s = score_alerts(truth, only)
            tally = tallies[v.name]
            tally.false_alarms += s.false_alarms_by_kind["symptom_aberration"]
            tally.checkpoint_days += s.checkpoint_days
            for e in s.events:
                if e.kind in {"ward_rise", "checkpoint_outbreak"}:
                    tally.events += 1
                    tally.found += e.found
                    if e.delay_h is not None:
                        tally.delays.append(e.delay_h)
    results = list(tallies.values())
    (out / "compare.md").write_text(compare_table(results))
    plot_compare(results, out / "delay_vs_false_alarms.png")
    return results


def compare_table(results: list[VariantResult]) -> str:
    lines = ["| method | threshold knob | false alarms / 100 cp-days | aberration events found "
             "| median delay |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.variant.method} | {r.variant.knob:g} | {r.fa_per_100:.2f} | "
                     f"{r.found}/{r.events} | {_fmt_delay(r.median_delay)} |")
    return "\n".join(lines) + "\n"


def plot_compare(results: list[VariantResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    by_method: dict[str, list[VariantResult]] = {}
    for r in results:
        by_method.setdefault(r.variant.method, []).append(r)
    for method, rows in by_method.items():
        pts = sorted((r.fa_per_100, r.median_delay if r.median_delay is not None else 48.0,
                      r.found / max(1, r.events)) for r in rows)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("unexplained symptom_aberration alerts per 100 checkpoint-days")
    ax.set_ylabel("median detection delay, h (48 = not found)")
    ax.set_title("symptom_aberration methods: delay against false alarms")
    ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------ calibrate


@dataclass
class CalibrationResult:
    checkpoint_days: float
    ward_days: float
    counts: Counter[str]
    ward_counts: Counter[str]


def calibrate(seeds: Sequence[int], *, days: int, checkpoints: int, wards: int,
              detectors: Detectors, out: Path) -> CalibrationResult:
    """Ordinary traffic only: every alert of a baseline kind is a false alarm."""
    out.mkdir(parents=True, exist_ok=True)
    result = CalibrationResult(0.0, 0.0, Counter(), Counter())
    for seed in seeds:
        scenario = _scenario(seed, days, checkpoints, wards, inject=False)
        bar = _progress(len(scenario.declarations), f"calibrate seed {seed}")
        run = run_offline(scenario, cluster=detectors.cluster, volume=detectors.volume,
                          aberration=detectors.aberration,
                          ward_aberration=detectors.ward_aberration, progress=bar.update)
        bar.close()
        armed = scenario.plan.day_start(ARMED_FROM_DAY).isoformat()
        armed_days = days - ARMED_FROM_DAY
        result.checkpoint_days += armed_days * len(scenario.plan.checkpoints)
        result.ward_days += armed_days * len(scenario.plan.wards)
        for a in run.alerts:
            if a["kind"] in BASELINE_KINDS and a["detected_at"] >= armed:
                (result.ward_counts if a["checkpoint_id"] is None else result.counts)[
                    a["kind"]] += 1
    lines = ["| detector | false alarms | per 100 series-days |", "|---|---|---|"]
    for kind in BASELINE_KINDS:
        n = result.counts[kind]
        lines.append(f"| {kind} | {n} | {100 * n / result.checkpoint_days:.3f} |")
    n = result.ward_counts["symptom_aberration"]
    lines.append(f"| symptom_aberration (wards) | {n} | "
                 f"{100 * n / max(1.0, result.ward_days):.3f} per 100 ward-days |")
    total = sum(result.counts.values()) + n
    lines.append(f"| **all, per 100 checkpoint-days** | {total} | "
                 f"**{100 * total / result.checkpoint_days:.3f}** |")
    (out / "calibration.md").write_text("\n".join(lines) + "\n")
    return result


def default_aberration() -> AberrationParams:
    return AberrationParams()

"""``python -m simulator``: traffic, scenarios with ground truth, and the detection evaluation.

Commands::

    python -m simulator traffic                      # the live traffic `make up` runs
    python -m simulator generate --seed 1 --out DIR  # a scenario: truth.json, declarations
    python -m simulator evaluate [--seeds 1 2 3] [--offline] [--out DIR]
    python -m simulator compare  [--seeds 1 2 3] [--out DIR]
    python -m simulator calibrate [--seeds 11 12 13] [--out DIR]

Detector settings come from the worker's environment variables (``VHC_BUDGET_*``,
``VHC_ABERRATION_METHODS``, ...), so an evaluation measures what the worker would run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from streams.app import detectors_from
from streams.config import WorkerSettings

DEFAULT_SEEDS = (1, 2, 3)


def _detector_settings() -> WorkerSettings:
    try:
        # Connection settings are not used offline; a live run passes its own.
        return WorkerSettings(kafka_bootstrap="127.0.0.1:9", redis_url="redis://127.0.0.1:9")
    except ValidationError as exc:
        sys.exit(f"invalid detector settings:\n{exc}")


def _common(parser: argparse.ArgumentParser, seeds: tuple[int, ...]) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    parser.add_argument("--days", type=int, default=15, help="at least 10 (7 of baseline)")
    parser.add_argument("--checkpoints", type=int, default=40)
    parser.add_argument("--wards", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path(".run/evaluation"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("traffic", help="send live simulated traffic to the API (make up)")
    gen = commands.add_parser("generate", help="write one scenario and its ground truth")
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--days", type=int, default=15)
    gen.add_argument("--checkpoints", type=int, default=40)
    gen.add_argument("--wards", type=int, default=6)
    gen.add_argument("--out", type=Path, default=Path(".run/scenario"))
    ev = commands.add_parser("evaluate", help="run scenarios through the pipeline and score")
    _common(ev, DEFAULT_SEEDS)
    ev.add_argument("--offline", action="store_true",
                    help="in process (the worker's pipeline, no broker/API/Redis; no exposure)")
    ev.add_argument("--kill-worker", type=int, default=0, metavar="N",
                    help="live only: SIGKILL the worker N times at random points")
    cmp_ = commands.add_parser("compare", help="aberration methods side by side (offline)")
    _common(cmp_, DEFAULT_SEEDS)
    cal = commands.add_parser("calibrate", help="false alarms on ordinary traffic (offline)")
    _common(cal, (11, 12, 13))
    args = parser.parse_args(argv)

    if args.command == "traffic":
        from simulator.main import run

        run()
        return 0
    if args.days < 10:
        parser.error("--days must be at least 10: seven days of baseline, then events")
    if args.command == "generate":
        from simulator.scenario import ScenarioConfig, build_scenario
        from simulator.traffic import TrafficConfig

        scenario = build_scenario(ScenarioConfig(traffic=TrafficConfig(
            seed=args.seed, days=args.days, checkpoints=args.checkpoints, wards=args.wards)))
        args.out.mkdir(parents=True, exist_ok=True)
        scenario.write_truth(args.out / "truth.json")
        with (args.out / "declarations.jsonl").open("w") as f:
            for d in scenario.stream():
                f.write(json.dumps({**d.body(), "sent_at": (d.sent_at or d.scanned_at)
                                    .isoformat()}, ensure_ascii=False) + "\n")
        print(f"{len(scenario.declarations)} declarations, {len(scenario.events)} events "
              f"-> {args.out}")
        return 0

    settings = _detector_settings()
    detectors = detectors_from(settings)
    sizes = {"days": args.days, "checkpoints": args.checkpoints, "wards": args.wards}
    if args.command == "evaluate":
        from simulator.evaluate import evaluate

        runner = None
        if not args.offline:
            from simulator.live import LiveSystem

            system = LiveSystem(args.out / "system", kill_worker=args.kill_worker)
            runner = system.run
        try:
            runs = evaluate(args.seeds, detectors=detectors, offline=args.offline,
                            out=args.out, live_runner=runner, **sizes)
        finally:
            if not args.offline:
                system.stop()
        print((args.out / "report.md").read_text())
        print(f"results, truth and alerts in {args.out}/")
        return 0 if runs else 1
    if args.command == "compare":
        from simulator.evaluate import DEFAULT_VARIANTS, compare

        compare(args.seeds, detectors=detectors, variants=DEFAULT_VARIANTS, out=args.out,
                **sizes)
        print((args.out / "compare.md").read_text())
        print(f"plot: {args.out / 'delay_vs_false_alarms.png'}")
        return 0
    from simulator.evaluate import calibrate

    calibrate(args.seeds, detectors=detectors, out=args.out, **sizes)
    print((args.out / "calibration.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

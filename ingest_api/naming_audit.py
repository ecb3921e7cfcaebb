"""Audit every registered checkpoint's name: ``python -m ingest_api.naming_audit``.

Reads the registry's Redis view (``VHC_REDIS_URL``) and judges each name with the rule in
force (``VHC_NAMING_RULE``, default the convention), against every other name. Prints a
table (or ``--json``) and a summary; exits 1 when a name breaks the rule, so a script or
CI job can act on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from redis.asyncio import Redis

from detectors.naming import DEFAULT_RULE, NamingRule, check_name, fold
from ingest_api.store import CheckpointStore


async def audit(redis_url: str, rule: NamingRule) -> list[dict[str, object]]:
    redis = Redis.from_url(redis_url, socket_timeout=10)
    try:
        registry = await CheckpointStore(redis).all()
    finally:
        await redis.aclose()
    names: dict[str, str] = {}
    for cp in sorted(registry, key=lambda c: c.created_at):
        names.setdefault(fold(cp.name), cp.checkpoint_id)
    out = []
    for cp in registry:
        verdict = check_name(cp.name, kind=cp.kind.value, ward_code=cp.ward_code, rule=rule,
                             others=names, checkpoint_id=cp.checkpoint_id)
        out.append({"checkpoint_id": cp.checkpoint_id, "ward_code": cp.ward_code,
                    "name": cp.name, "conforms": verdict.conforms,
                    "violations": [v.rule for v in verdict.violations],
                    "suggestion": verdict.suggestion})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest_api.naming_audit",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default=os.environ.get("VHC_REDIS_URL"))
    parser.add_argument("--rule", default=os.environ.get("VHC_NAMING_RULE", DEFAULT_RULE))
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args(argv)
    if not args.redis_url:
        parser.error("set VHC_REDIS_URL or pass --redis-url")
    rows = asyncio.run(audit(args.redis_url, NamingRule(args.rule)))
    bad = [r for r in rows if not r["conforms"]]
    if args.json:
        json.dump({"checkpoints": len(rows), "violations": len(bad), "items": rows},
                  sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        for r in rows:
            mark = "ok " if r["conforms"] else "BAD"
            sys.stdout.write(f"{mark} {r['checkpoint_id']:<24} {r['name']}\n")
            if not r["conforms"]:
                sys.stdout.write(f"    broken: {r['violations']}\n"
                                 f"    use:    {r['suggestion']}\n")
        sys.stdout.write(f"{len(rows)} checkpoints, {len(rows) - len(bad)} conform, "
                         f"{len(bad)} break the rule\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

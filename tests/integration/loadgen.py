"""Sustained ingest load from a second process, for the fault tests.

``python -m tests.integration.loadgen URL KEY OUT --checkpoints A,B --seconds S``
sends single declarations and batches of 20 from two threads for ``S`` seconds (or until
``OUT.stop`` appears), never retrying, and writes one JSON line per declaration to ``OUT``:
its id, checkpoint and the answer (``accepted``, ``duplicate``, ``invalid``,
``unavailable``, or ``error:<what>`` when no answer came).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx


def _declaration(checkpoint_id: str, n: int) -> dict[str, Any]:
    return {"declaration_id": str(uuid.uuid4()), "checkpoint_id": checkpoint_id,
            "scanned_at": (datetime.now(UTC) - timedelta(seconds=30)).isoformat(),
            "person": {"id_number": f"{100_000_000 + n % 899_999_999:09d}"},
            "symptoms": ["cough"] if n % 7 == 0 else []}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoints", required=True)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=200, help="declarations/s per thread")
    args = parser.parse_args()
    checkpoints = args.checkpoints.split(",")
    lock = threading.Lock()
    stop_file = args.out.with_suffix(".stop")
    deadline = time.monotonic() + args.seconds
    counter = iter(range(10**9))

    with args.out.open("w") as out:
        def record(items: list[dict[str, Any]], statuses: list[str]) -> None:
            with lock:
                for item, status in zip(items, statuses, strict=True):
                    out.write(json.dumps({"id": item["declaration_id"],
                                          "checkpoint_id": item["checkpoint_id"],
                                          "status": status}) + "\n")
                out.flush()

        def run(batch: bool) -> None:
            with httpx.Client(base_url=args.url, headers={"X-API-Key": args.key},
                              timeout=30) as client:
                size = 20 if batch else 1
                while time.monotonic() < deadline and not stop_file.exists():
                    started = time.monotonic()
                    items = [_declaration(checkpoints[n % len(checkpoints)], n)
                             for n in (next(counter) for _ in range(size))]
                    try:
                        if batch:
                            answer = client.post("/v1/declarations/batch",
                                                 json={"declarations": items})
                            body = answer.json()
                            statuses = ([i["status"] for i in body["items"]] if "items" in body
                                        else ["unavailable" if answer.status_code == 503
                                              else f"error:{answer.status_code}"] * size)
                        else:
                            answer = client.post("/v1/declarations", json=items[0])
                            statuses = [answer.json().get("status", "unavailable")
                                        if answer.status_code in (200, 202)
                                        else "unavailable" if answer.status_code == 503
                                        else f"error:{answer.status_code}"]
                    except httpx.HTTPError as exc:
                        statuses = [f"error:{type(exc).__name__}"] * len(items)
                    record(items, statuses)
                    time.sleep(max(0.0, size / args.rate - (time.monotonic() - started)))

        threads = [threading.Thread(target=run, args=(b,)) for b in (False, True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print(f"loadgen done: {sum(1 for _ in args.out.open())} declarations", flush=True)


if __name__ == "__main__":
    main()

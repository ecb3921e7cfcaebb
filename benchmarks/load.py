"""A lean HTTP/1.1 load driver (raw asyncio streams, keep-alive), run as its own process so
the client does not share the server's cores' interpreter.

    python -m benchmarks.load --url http://127.0.0.1:8000 --mode single --clients 16 \\
        --seconds 10 --key KEY --checkpoint CP

Modes: ``single`` (``POST /v1/declarations``), ``batch`` (``POST /v1/declarations/batch``
with ``--batch`` items), ``noop`` (``POST /noop``, the baseline server's route); ``--path``
sends a mode's bodies to another route (``benchmarks.ceiling_api``). Each
request carries fresh declaration ids. Prints one JSON line: requests, declarations,
seconds, statuses, p50/p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urlsplit


def declaration(checkpoint: str, i: int, checkpoints: int = 1) -> dict[str, object]:
    """The ``i``-th declaration: at ``checkpoint``, or spread over ``checkpoints`` ids of its
    form (``BENCH-0000`` … ``BENCH-0199``)."""
    if checkpoints > 1:
        stem, _, _ = checkpoint.rpartition("-")
        checkpoint = f"{stem}-{i % checkpoints:04d}"
    return {"declaration_id": str(uuid.uuid4()), "checkpoint_id": checkpoint,
            "scanned_at": datetime.now(UTC).isoformat(),
            "person": {"id_number": f"{100_000_000 + i % 899_999_999:09d}",
                       "full_name": "Nguyễn Văn A"},
            "temperature_c": 36.6, "symptoms": ["cough"] if i % 25 == 0 else []}


async def client(host: str, port: int, path: str, body_of: object, headers: str,
                 deadline: float, latencies: list[float], statuses: Counter[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    try:
        while time.perf_counter() < deadline:
            body = json.dumps(body_of(i)).encode()  # type: ignore[operator]
            i += 1
            request = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}"
                       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                       "\r\n").encode() + body
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    headers = f"X-API-Key: {args.key}\r\n" if args.key else ""
    if args.mode == "batch":
        path = "/v1/declarations/batch"

        def body_of(i: int) -> object:
            return {"declarations": [declaration(args.checkpoint, i * args.batch + j,
                                                 args.checkpoints)
                                     for j in range(args.batch)]}
        per_request = args.batch
    else:
        path = "/noop" if args.mode == "noop" else "/v1/declarations"

        def body_of(i: int) -> object:
            return declaration(args.checkpoint, i, args.checkpoints)
        per_request = 1
    path = args.path or path
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    deadline = started + args.seconds
    await asyncio.gather(*(client(host, port, path, body_of, headers, deadline, latencies,
                                  statuses) for _ in range(args.clients)))
    elapsed = time.perf_counter() - started
    ok = sum(n for s, n in statuses.items() if s < 300)
    lat = sorted(latencies)
    return {"mode": args.mode, "requests": len(lat), "ok": ok,
            "declarations": ok * per_request, "seconds": round(elapsed, 3),
            "requests_per_s": round(len(lat) / elapsed, 1),
            "declarations_per_s": round(ok * per_request / elapsed, 1),
            "p50_ms": round(statistics.median(lat) * 1000, 2) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 2) if lat else None,
            "statuses": dict(statuses)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["single", "batch", "noop"], required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--path", default="", help="another route for the mode's bodies")
    parser.add_argument("--key", default="")
    parser.add_argument("--checkpoint", default="BENCH-0000")
    parser.add_argument("--checkpoints", type=int, default=1,
                        help="spread over this many checkpoint ids like --checkpoint's")
    print(json.dumps(asyncio.run(run(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()

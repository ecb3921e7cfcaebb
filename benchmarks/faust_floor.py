"""The faust floor: an agent that takes batches of declarations and does nothing else.

Run by ``benchmarks.worker_throughput`` as a separate process; prints ``FLOOR <rate>``.
Environment: ``VHC_KAFKA_BOOTSTRAP``, ``BENCH_RECORDS``, ``VHC_BATCH_MAX``, ``VHC_DATA_DIR``;
``BENCH_STOCK_FAUST=1`` runs faust without the worker's fix to its record delivery
(``streams.faust_fixes.cheap_message_delivery``) and with its ``Monitor`` sensor
(``without_monitor``), as faust ships.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import faust

from streams.faust_fixes import cheap_message_delivery, without_monitor
from vhc_common.runtime import tune_gc
from vhc_common.topics import DECLARATIONS


def main() -> None:
    records = int(os.environ["BENCH_RECORDS"])
    batch = int(os.environ.get("VHC_BATCH_MAX", "5000"))
    app = faust.App(f"bench-floor-{os.getpid()}",
                    broker=f"kafka://{os.environ['VHC_KAFKA_BOOTSTRAP']}", web_enabled=False,
                    # the run's directory (the worker's VHC_DATA_DIR), not the current one
                    datadir=f"{os.environ['VHC_DATA_DIR']}-floor-{os.getpid()}",
                    key_serializer="raw", value_serializer="raw",
                    consumer_auto_offset_reset="earliest", broker_max_poll_records=batch,
                    stream_buffer_maxsize=batch * 4)
    if not os.environ.get("BENCH_STOCK_FAUST"):
        # faust as the worker runs it: records handed to the stream without four tasks
        # each, and without faust's Monitor sensor
        cheap_message_delivery(app)
        without_monitor(app)
    topic = app.topic(DECLARATIONS, key_type=bytes, value_type=bytes, internal=False)
    seen = {"n": 0, "first": 0, "t0": 0.0}

    @app.agent(topic)
    async def floor(stream: Any) -> None:
        async for events in stream.take_events(batch, 0.25):
            if not seen["t0"]:
                seen["t0"], seen["first"] = time.perf_counter(), len(events)
            seen["n"] += len(events)
            if seen["n"] >= records:
                rate = (seen["n"] - seen["first"]) / (time.perf_counter() - seen["t0"])
                print(f"FLOOR {rate:.0f}", flush=True)
                os._exit(0)

    runner = faust.Worker(app, loglevel="warning", redirect_stdouts=False)
    runner.spinner = None  # as the worker (streams.main): no root logger at DEBUG
    tune_gc()  # as the worker
    runner.execute_from_commandline()


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker"]
    main()

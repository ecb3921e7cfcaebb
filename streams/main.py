"""Entry point of the stream worker: ``vhc-worker`` (or ``python -m streams.main``)."""

from __future__ import annotations

import logging
import sys

import faust
from prometheus_client import start_http_server
from pydantic import ValidationError

from streams.app import create_worker, internal_topic_specs
from streams.config import WorkerSettings
from streams.faust_fixes import exit_code
from vhc_common import kafka_security, native
from vhc_common.kafka_admin import ensure_topics
from vhc_common.runtime import tune_gc
from vhc_common.settings import settings_errors
from vhc_common.topics import topic_specs

__all__ = ["run"]


def run() -> None:
    native.exit_if_stale("vhc-worker")  # compiled modules match their sources
    try:
        settings = WorkerSettings()
        kafka_security.current()  # VHC_KAFKA_SECURITY_PROTOCOL etc.: checked at start too
    except ValidationError as exc:
        sys.exit(f"vhc-worker: invalid settings:\n{settings_errors(exc)}")
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_topics(settings.kafka_bootstrap,
                  [*topic_specs(partitions=settings.partitions,
                                retention_days=settings.retention_days),
                   *internal_topic_specs(settings)])
    worker = create_worker(settings)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host,
                          registry=worker.metrics.registry)
    runner = faust.Worker(worker.app, loglevel=settings.log_level, redirect_stdouts=False)
    # faust's terminal spinner sets the root logger to DEBUG at level warning and above
    # (to spin on every record): every debug call of faust and aiokafka then built a log
    # record, several per declaration. The worker logs to files; no spinner.
    runner.spinner = None
    tune_gc()
    try:
        runner.execute_from_commandline()
    finally:
        if (code := exit_code()) is not None:  # stopped to be restarted (streams.app)
            sys.exit(code)


if __name__ == "__main__":
    run()

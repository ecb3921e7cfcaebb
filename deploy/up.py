"""``make up``: the whole system on this machine, in the foreground.

Starts, in order: Kafka (KRaft, 127.0.0.1:9092), our own Redis (127.0.0.1:6380, not the
system instance), the stream worker, the API (127.0.0.1:8000) and, unless
``VHC_SIMULATE=0``, the traffic simulator. Prints where to look and the credentials in
use, then a progress line now and then. Ctrl-C (or SIGTERM) stops everything it started,
in reverse order, within 20 seconds. A worker, API, notifier or simulator that crashes
is restarted, as a container runtime would (``restart: unless-stopped``), after 1, 2, 4 …
30 s; one that crashes 5 times within 2 minutes is a crash loop: everything stops and its
log is shown. Process ids are kept in ``.run/pids/``. ``VHC_WORKERS=N`` starts N stream
workers in one consumer group (they share the topics' partitions).

Credentials come from ``VHC_INGEST_KEYS`` / ``VHC_STAFF_TOKENS`` / ``VHC_PSEUDONYM_SECRET``
when set; otherwise development values are made once and kept in ``.run/credentials.env``
(the pseudonymisation secret must not change between runs, or keys stop matching).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from deploy.localsvc import (
    KafkaBroker,
    ManagedProcess,
    PrometheusServer,
    RedisServer,
    ServiceStartError,
    free_port,
    log_tail,
)

RUN = Path(os.environ.get("VHC_RUN_DIR", ".run")).resolve()
API_PORT = int(os.environ.get("VHC_API_PORT", "8000"))
KAFKA_PORT = int(os.environ.get("VHC_UP_KAFKA_PORT", "9092"))
REDIS_PORT = int(os.environ.get("VHC_UP_REDIS_PORT", "6380"))
WORKER_METRICS_PORT = int(os.environ.get("VHC_METRICS_PORT", "9108"))
NOTIFIER_METRICS_PORT = int(os.environ.get("VHC_NOTIFIER_METRICS_PORT", "9109"))
PROMETHEUS_PORT = int(os.environ.get("VHC_UP_PROMETHEUS_PORT", "9090"))
READY_TIMEOUT_S = 120.0
PROGRESS_EVERY_S = 15.0
WORKERS = int(os.environ.get("VHC_WORKERS", "1"))
CRASH_LOOP = (5, 120.0)  # this many crashes within this many seconds


class _Stop(Exception):
    pass


def credentials() -> dict[str, str]:
    stored: dict[str, str] = {}
    path = RUN / "credentials.env"
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            stored[name] = value
    made = {
        "VHC_INGEST_KEYS": stored.get("VHC_INGEST_KEYS") or "dev-ingest-" + secrets.token_hex(12),
        "VHC_STAFF_TOKENS": stored.get("VHC_STAFF_TOKENS") or "dev-staff-" + secrets.token_hex(12),
        "VHC_PSEUDONYM_SECRET": stored.get("VHC_PSEUDONYM_SECRET") or secrets.token_hex(32),
    }
    RUN.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in made.items()))
    path.chmod(0o600)
    given = {k: os.environ[k] for k in made if os.environ.get(k)}
    return {**made, **given}


@dataclass
class Supervised:
    """A service ``make up`` keeps running: restarted after a crash, with back-off."""

    name: str
    module: str
    env: dict[str, str]
    process: ManagedProcess = field(init=False)
    crashes: list[float] = field(default_factory=list)
    restart_at: float | None = None

    def __post_init__(self) -> None:
        log_path = RUN / "logs" / f"{self.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(b"")  # this run's lines only (restarts append)
        self._start()

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def _start(self) -> None:
        self.process = ManagedProcess.spawn_module(self.name, self.module, self.env,
                                                   RUN / "logs" / f"{self.name}.log")
        pids = RUN / "pids"
        pids.mkdir(parents=True, exist_ok=True)
        assert self.process.proc is not None
        (pids / f"{self.name}.pid").write_text(f"{self.process.proc.pid}\n")

    def poll(self, now: float) -> None:
        """Notice a crash and schedule the restart; restart when it is due. Raises
        ``ServiceStartError`` for a crash loop."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restart_at = None
                self._start()
                print(f"[{time.strftime('%H:%M:%S')}] {self.name} restarted "
                      f"(restart {len(self.crashes)})", flush=True)
            return
        if self.process.alive():
            return
        code = self.process.proc.returncode if self.process.proc else None
        self.process.stop()  # closes the log handle
        self.crashes = [t for t in self.crashes if now - t < CRASH_LOOP[1]] + [now]
        if len(self.crashes) >= CRASH_LOOP[0]:
            raise ServiceStartError(
                f"{self.name} crashed {len(self.crashes)} times within "
                f"{CRASH_LOOP[1]:.0f} s (last exit code {code}): not restarting\n"
                f"--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}")
        delay = min(30.0, 2.0 ** (len(self.crashes) - 1))
        self.restart_at = now + delay
        print(f"[{time.strftime('%H:%M:%S')}] {self.name} exited (code {code}); restarting "
              f"in {delay:.0f} s; its log: {self.log_path}", flush=True)

    def stop(self, timeout_s: float = 15.0) -> None:
        self.restart_at = None
        self.process.stop(timeout_s=timeout_s)


def _get_json(url: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url)  # noqa: S310 - a fixed http://127.0.0.1 URL
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=3) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (urllib.error.URLError, OSError, ValueError):
        return 0, {}


def _check_alive(children: list[Supervised]) -> None:
    now = time.monotonic()
    for child in children:
        child.poll(now)


def main() -> int:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise _Stop

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    creds = credentials()
    kafka = KafkaBroker(name="kafka", log_path=RUN / "logs" / "kafka.log", port=KAFKA_PORT,
                        controller_port=free_port(), data_dir=RUN / "kafka")
    redis = RedisServer(name="redis", log_path=RUN / "logs" / "redis.log", port=REDIS_PORT,
                        data_dir=RUN / "redis")
    started: list[ManagedProcess | Supervised] = []
    children: list[Supervised] = []
    code = 0
    t0 = time.monotonic()
    try:
        print(f"starting Kafka on {kafka.bootstrap} ...", flush=True)
        kafka.start()
        started.append(kafka)
        print(f"starting Redis on 127.0.0.1:{REDIS_PORT} ...", flush=True)
        redis.start()
        started.append(redis)
        env = {
            **os.environ, **creds,
            "VHC_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "VHC_REDIS_URL": redis.url,
            "VHC_DATA_DIR": str(RUN / "worker"),
            "VHC_METRICS_PORT": str(WORKER_METRICS_PORT),
            "VHC_API_PORT": str(API_PORT),
            "VHC_NOTIFIER_METRICS_PORT": str(NOTIFIER_METRICS_PORT),
            # Development values are made above; production refuses them.
            "VHC_ENVIRONMENT": os.environ.get("VHC_ENVIRONMENT", "development"),
        }
        if not 1 <= WORKERS <= 16:
            raise ServiceStartError(f"VHC_WORKERS must be 1 to 16, got {WORKERS}")
        print(f"starting {WORKERS} stream worker(s) and the API ...", flush=True)
        workers = [(f"worker-{i + 1}" if WORKERS > 1 else "worker", i) for i in range(WORKERS)]
        for name, i in workers:  # one consumer group: the partitions are shared out
            child = Supervised(name, "streams.main", {
                **env, "VHC_DATA_DIR": str(RUN / name),
                "VHC_METRICS_PORT": str(WORKER_METRICS_PORT + i)})
            started.append(child)
            children.append(child)
        services = [("api", "ingest_api.main")]
        if os.environ.get("VHC_WEBHOOK_URLS"):  # critical alerts to the team's webhooks
            services.append(("notifier", "streams.notifier"))
        for name, module in services:
            child = Supervised(name, module, env)
            started.append(child)
            children.append(child)
        base = f"http://127.0.0.1:{API_PORT}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while _get_json(f"{base}/readyz")[0] != 200:
            _check_alive(children)
            if time.monotonic() > deadline:
                raise ServiceStartError(
                    f"the API was not ready within {READY_TIMEOUT_S:.0f} s; "
                    f"readyz says {_get_json(f'{base}/readyz')}\n--- worker ---\n"
                    f"{log_tail(RUN / 'logs' / 'worker.log')}\n--- api ---\n"
                    f"{log_tail(RUN / 'logs' / 'api.log')}"
                )
            time.sleep(0.5)
        jobs = {"vhc-api": [f"127.0.0.1:{API_PORT}"],
                "vhc-worker": [f"127.0.0.1:{WORKER_METRICS_PORT + i}" for _, i in workers]}
        if any(c.name == "notifier" for c in children):
            jobs["vhc-notifier"] = [f"127.0.0.1:{NOTIFIER_METRICS_PORT}"]
        prometheus = PrometheusServer(name="prometheus", port=PROMETHEUS_PORT, jobs=jobs,
                                      log_path=RUN / "logs" / "prometheus.log",
                                      data_dir=RUN / "prometheus")
        print(f"starting Prometheus on {prometheus.url} ...", flush=True)
        prometheus.start()
        started.append(prometheus)
        simulate = os.environ.get("VHC_SIMULATE", "1") != "0"
        if simulate:
            sim_env = {**env, "VHC_SIM_API_URL": base,
                       "VHC_SIM_INGEST_KEY": creds["VHC_INGEST_KEYS"].split(",")[0],
                       "VHC_SIM_STAFF_TOKEN": creds["VHC_STAFF_TOKENS"].split(",")[0]}
            child = Supervised("simulator", "simulator.main", sim_env)
            started.append(child)
            children.append(child)
        token = creds["VHC_STAFF_TOKENS"].split(",")[0]
        origin = ("from the environment" if os.environ.get("VHC_INGEST_KEYS")
                  else "development values, kept in .run/credentials.env")
        traffic = "on (VHC_SIMULATE=0 turns it off)" if simulate else "off"
        worker_metrics = "  ".join(f"http://127.0.0.1:{WORKER_METRICS_PORT + i}/metrics"
                                   for _, i in workers)
        print(f"""
vhc-watch is up ({time.monotonic() - t0:.1f} s). Where to look:
  staff console        {base}/   (log in with the staff token below)
  API docs (OpenAPI)   {base}/docs
  live stats           curl -H 'Authorization: Bearer {token}' {base}/v1/checkpoints/PY-XH-CHO/stats
  alerts               curl -H 'Authorization: Bearer {token}' '{base}/v1/alerts?status=open'
  live alerts (SSE)    curl -N -H 'Authorization: Bearer {token}' {base}/v1/alerts/stream
  checkpoints          curl -H 'Authorization: Bearer {token}' {base}/v1/checkpoints
  readiness, metrics   {base}/readyz   {base}/metrics   worker: {worker_metrics}
  Prometheus           {prometheus.url}   (alert rules: {prometheus.url}/alerts)
  Kafka, Redis         {kafka.bootstrap}   {redis.url}
  logs, process ids    {RUN / 'logs'}   {RUN / 'pids'}
Stream workers: {WORKERS} (VHC_WORKERS); a crashed service is restarted.
Credentials ({origin}):
  front ends (X-API-Key)           {creds['VHC_INGEST_KEYS']}
  staff (Authorization: Bearer)    {creds['VHC_STAFF_TOKENS']}
Simulated traffic: {traffic}. Ctrl-C stops everything.
""", flush=True)
        next_progress = time.monotonic()
        first_stats_shown = False
        while True:
            _check_alive(children)
            if simulate and time.monotonic() >= next_progress:
                status, body = _get_json(f"{base}/v1/checkpoints/PY-XH-CHO/stats", token)
                windows = body.get("windows") if status == 200 else None
                if isinstance(windows, dict):
                    w5 = windows["5m"]
                    if not first_stats_shown and w5["total"]:
                        print(f"first live counts {time.monotonic() - t0:.1f} s after start",
                              flush=True)
                        first_stats_shown = True
                    print(f"[{time.strftime('%H:%M:%S')}] PY-XH-CHO last 5 min: "
                          f"{w5['total']} declarations, {w5['symptomatic']} symptomatic, "
                          f"{w5['fever']} fever; last 24 h: {windows['24h']['total']}", flush=True)
                next_progress = time.monotonic() + (PROGRESS_EVERY_S if first_stats_shown else 2)
            time.sleep(0.5)
    except _Stop:
        print("\nstopping ...", flush=True)
    except ServiceStartError as exc:
        print(f"\nerror: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_started = time.monotonic()
        for svc in reversed(started):
            svc.stop(timeout_s=6 if svc in children else 8)
            print(f"  stopped {svc.name}", flush=True)
        print(f"all stopped in {time.monotonic() - stop_started:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Local services for development and tests: a real Apache Kafka broker and a real Redis.

No Docker engine is needed. The broker's jars come from Maven Central through ``mvn``
(``deploy/kafka/pom.xml``), cached under ``~/.cache/vhc-watch/kafka-<version>`` and
fetched once; the broker runs as a single KRaft node (broker + controller) on 127.0.0.1
with Java 17+. Redis is Debian's ``redis-server``, installed when missing and always run
as our own process with an explicit port and directory (never the system instance).

Used three ways:

* ``python -m deploy.localsvc fetch``: fetch the jars (idempotent);
* ``python -m deploy.localsvc kafka|redis --port N --dir D``: run one in the foreground;
* imported by ``deploy.up`` (``make up``) and the test session fixture.

A start that fails raises :class:`ServiceStartError` whose message ends with the tail
of the service's log, so CI shows why.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = [
    "KAFKA_VERSION",
    "KafkaBroker",
    "ManagedProcess",
    "PrometheusServer",
    "RedisServer",
    "ServiceStartError",
    "ensure_debian_packages",
    "ensure_kafka_jars",
    "ensure_redis_server",
    "free_port",
]

DEPLOY_DIR = Path(__file__).resolve().parent
POM = DEPLOY_DIR / "kafka" / "pom.xml"
LOG4J_CONFIG = DEPLOY_DIR / "kafka" / "log4j2.xml"
KAFKA_VERSION = "4.1.1"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
CACHE_ROOT = Path(os.environ.get("VHC_CACHE_DIR", Path.home() / ".cache" / "vhc-watch"))
LOG_TAIL_LINES = 60


class ServiceStartError(RuntimeError):
    """A local service could not be installed, started or reached."""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _require_free(port: int, what: str) -> None:
    if port_open(port):
        raise ServiceStartError(
            f"{what}: port {port} on 127.0.0.1 is already taken (a service left running "
            f"from an earlier run?). Stop it, e.g. `fuser -k {port}/tcp`, or pick another port."
        )


# --------------------------------------------------------------------------- Kafka


def ensure_kafka_jars(cache_root: Path = CACHE_ROOT) -> Path:
    """Return a directory holding the broker's full runtime class path, fetching it once."""
    libs = cache_root / f"kafka-{KAFKA_VERSION}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    ensure_debian_packages({"mvn": "maven", "java": "openjdk-17-jre-headless"})
    libs.mkdir(parents=True, exist_ok=True)
    print(f"fetching Apache Kafka {KAFKA_VERSION} broker jars into {libs} (once) ...",
          file=sys.stderr, flush=True)
    cmd = [
        "mvn", "-q", "-B", "-f", str(POM),
        f"-Dkafka.version={KAFKA_VERSION}",
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ServiceStartError(
            f"fetching Kafka jars failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    if not any(libs.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        raise ServiceStartError(f"mvn finished but kafka_2.13-{KAFKA_VERSION}.jar is not in {libs}")
    marker.write_text(KAFKA_VERSION)
    return libs


def kafka_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding: the form StorageTool wants."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class ManagedProcess:
    """A child process with its own log file, stopped with SIGTERM then SIGKILL."""

    name: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def _spawn(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        # A new session: Ctrl-C in the terminal reaches the orchestrator only, which
        # then stops services in order.
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    @classmethod
    def spawn_module(cls, name: str, module: str, env: dict[str, str],
                     log_path: Path) -> ManagedProcess:
        """Run ``python -m module`` (this interpreter) with ``env``, logging to ``log_path``."""
        proc = cls(name=name, log_path=log_path)
        proc._spawn([sys.executable, "-m", module], env=env)
        return proc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def fail(self, why: str) -> ServiceStartError:
        self.stop()
        return ServiceStartError(
            f"{self.name} failed to start: {why}\n--- last lines of {self.log_path} ---\n"
            f"{log_tail(self.log_path)}"
        )

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class KafkaBroker(ManagedProcess):
    """A single-node KRaft broker on 127.0.0.1 (broker and controller in one JVM)."""

    port: int = 9092
    controller_port: int = 9093
    data_dir: Path = Path(".run/kafka")
    heap: str = "768m"
    #: A second listener with SASL/PLAIN authentication (tests of the clients' settings),
    #: accepting ``sasl_users`` (name, password).
    sasl_port: int | None = None
    sasl_users: tuple[tuple[str, str], ...] = ()
    #: How long the coordinator waits for more members before a new group's first
    #: rebalance: 0 here (tests start one consumer at a time), Kafka's default 3,000 ms
    #: where several start together (``benchmarks.services``).
    initial_rebalance_delay_ms: int = 0

    @classmethod
    def on_free_ports(cls, name: str, directory: Path) -> KafkaBroker:
        """A broker on free ports, its data in ``directory/name``, log ``directory/name.log``."""
        return cls(name=name, log_path=directory / f"{name}.log", port=free_port(),
                   controller_port=free_port(), data_dir=directory / name)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        if self.sasl_port is None:
            raise ValueError("this broker has no SASL listener")
        return f"127.0.0.1:{self.sasl_port}"

    def _sasl_properties(self) -> list[str]:
        if self.sasl_port is None:
            return []
        users = " ".join(f'user_{name}="{password}"' for name, password in self.sasl_users)
        return ["sasl.enabled.mechanisms=PLAIN",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config="
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"]

    def properties(self) -> str:
        logs = self.data_dir / "data"
        sasl = (f",SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}" if self.sasl_port is not None
                else "")
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}{sasl}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}{sasl}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
            "SASL_PLAINTEXT:SASL_PLAINTEXT",
            *self._sasl_properties(),
            f"log.dirs={logs}",
            "num.partitions=4",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            f"group.initial.rebalance.delay.ms={self.initial_rebalance_delay_ms}",
            # Topics are created by vhc-watch itself, with their partitions and retention;
            # an early metadata request must not create one with the broker's defaults.
            "auto.create.topics.enable=false",
            # Personal data is bounded by retention: 21 days unless a topic says otherwise.
            "log.retention.hours=504",
            "",
        ])

    def start(self, timeout_s: float = 90.0) -> None:
        libs = ensure_kafka_jars()
        _require_free(self.port, self.name)
        _require_free(self.controller_port, f"{self.name} controller")
        if self.sasl_port is not None:
            _require_free(self.sasl_port, f"{self.name} SASL listener")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self.data_dir / "server.properties"
        props.write_text(self.properties())
        classpath = f"{libs}/*"
        java = ["java", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
                f"-Dkafka.logs.dir={self.data_dir}", "-cp", classpath]
        cluster_id_file = self.data_dir / "cluster.id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(kafka_cluster_id())
        fmt = subprocess.run(
            # "=": a URL-safe base64 id may start with "-" and must not read as an option.
            [*java, "kafka.tools.StorageTool", "format",
             f"--cluster-id={cluster_id_file.read_text()}", "-c", str(props),
             "--ignore-formatted"],
            capture_output=True, text=True, check=False,
        )
        if fmt.returncode != 0:
            raise ServiceStartError(
                f"{self.name}: formatting {self.data_dir} failed:\n{fmt.stdout}\n{fmt.stderr}"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Only this run's lines are searched for the start marker.
        start_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._spawn([
            *java[:1], f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", *java[1:],
            "kafka.Kafka", str(props),
        ])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise self.fail(f"the JVM exited with code {self.proc and self.proc.returncode}")
            with self.log_path.open("rb") as fh:
                fh.seek(start_offset)
                if b"Kafka Server started" in fh.read() and port_open(self.port):
                    return
            time.sleep(0.2)
        raise self.fail(f"no 'Kafka Server started' within {timeout_s:.0f} s")


# --------------------------------------------------------------------------- Redis


def _present(what: str) -> bool:
    """A command on PATH, or an absolute file path (a font, say) that exists."""
    return Path(what).is_file() if what.startswith("/") else shutil.which(what) is not None


def ensure_debian_packages(commands: dict[str, str]) -> None:
    """Install the Debian package of each missing command or file (``{command: package}``;
    a command may be an absolute file path)."""
    missing = sorted({pkg for cmd, pkg in commands.items() if not _present(cmd)})
    if not missing:
        return
    if os.geteuid() != 0:
        raise ServiceStartError(
            f"missing commands; install them: sudo apt-get install {' '.join(missing)}"
        )
    print(f"installing Debian packages: {' '.join(missing)} ...", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if proc.returncode != 0:
            raise ServiceStartError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    still = [cmd for cmd in commands if not _present(cmd)]
    if still:
        raise ServiceStartError(f"still missing after apt-get install: {', '.join(still)}")


#: What the console, posters and reports need: a font with every Vietnamese letter, and
#: the tools the tests look at pages and PDFs with (headless Chromium, poppler, zbar).
PAGE_TOOLS = {
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf": "fonts-dejavu-core",
    "chromium": "chromium",
    "pdftoppm": "poppler-utils",
    "zbarimg": "zbar-tools",
}


#: The project's Prometheus rules (loaded by every Prometheus it runs).
PROMETHEUS_RULES = Path(__file__).resolve().parent / "prometheus" / "rules" / "*.yml"


@dataclass
class PrometheusServer(ManagedProcess):
    """Debian's ``prometheus`` on 127.0.0.1 scraping ``jobs`` (job name -> targets) with
    the project's rules loaded; data in ``data_dir``."""

    port: int = 9090
    data_dir: Path = Path(".run/prometheus")
    jobs: dict[str, list[str]] = field(default_factory=dict)
    scrape_interval: str = "15s"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        lines = ["global:", f"  scrape_interval: {self.scrape_interval}",
                 f"  evaluation_interval: {self.scrape_interval}",
                 "rule_files:", f"  - {json.dumps(str(PROMETHEUS_RULES))}",
                 "scrape_configs:"]
        for job, targets in self.jobs.items():
            lines += [f"  - job_name: {json.dumps(job)}", "    static_configs:",
                      f"      - targets: {json.dumps(targets)}"]
        return "\n".join(lines) + "\n"

    def start(self, timeout_s: float = 60) -> None:
        ensure_debian_packages({"prometheus": "prometheus"})
        binary = shutil.which("prometheus")
        assert binary is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "prometheus.yml"
        config.write_text(self.config())
        self._spawn([binary, f"--config.file={config}",
                     f"--storage.tsdb.path={self.data_dir / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}"])
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.alive():
                code = self.proc and self.proc.returncode
                raise self.fail(f"prometheus exited with code {code}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise self.fail(f"not ready within {timeout_s:.0f} s")
            time.sleep(0.3)


def ensure_redis_server() -> str:
    """Path of ``redis-server``, installing Debian's package when it is missing."""
    ensure_debian_packages({"redis-server": "redis-server"})
    path = shutil.which("redis-server")
    assert path is not None
    return path


@dataclass
class RedisServer(ManagedProcess):
    """Our own redis-server: explicit port and directory, append-only file on."""

    port: int = 6379
    data_dir: Path = Path(".run/redis")

    @classmethod
    def on_free_port(cls, name: str, directory: Path) -> RedisServer:
        """A redis-server on a free port, data in ``directory/name``, log ``name.log``."""
        return cls(name=name, log_path=directory / f"{name}.log", port=free_port(),
                   data_dir=directory / name)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20.0) -> None:
        binary = ensure_redis_server()
        _require_free(self.port, self.name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._spawn([
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
            str(self.data_dir.resolve()), "--appendonly", "yes", "--save", "",
            "--daemonize", "no", "--protected-mode", "yes",
        ])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.proc and self.proc.returncode
                raise self.fail(f"redis-server exited with code {code}")
            if _redis_ping(self.port):
                return
            time.sleep(0.1)
        raise self.fail(f"no PONG within {timeout_s:.0f} s")


def _redis_ping(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")
    return False


@contextlib.contextmanager
def running(*services: KafkaBroker | RedisServer) -> Iterator[None]:
    """Start services in order, stop them in reverse order, whatever happens."""
    started: list[KafkaBroker | RedisServer] = []
    try:
        for svc in services:
            svc.start()
            started.append(svc)
        yield
    finally:
        for svc in reversed(started):
            svc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.localsvc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="fetch the Kafka broker jars (once), install redis-server, "
                   "docker-compose (to check docker-compose.yml), fonts, and chromium, "
                   "poppler-utils and zbar-tools (to test pages and posters)")
    for name, port in (("kafka", 9092), ("redis", 6379)):
        p = sub.add_parser(name, help=f"run {name} in the foreground until Ctrl-C")
        p.add_argument("--port", type=int, default=port)
        p.add_argument("--dir", type=Path, default=Path(".run") / name)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "fetch":
            print(ensure_kafka_jars())
            print(ensure_redis_server())
            ensure_debian_packages({"docker-compose": "docker-compose",
                                    "prometheus": "prometheus", "promtool": "prometheus",
                                    **PAGE_TOOLS})
            return 0
        svc: KafkaBroker | RedisServer
        if args.cmd == "kafka":
            svc = KafkaBroker(name="kafka", log_path=args.dir / "kafka.log", port=args.port,
                              controller_port=free_port(), data_dir=args.dir)
        else:
            svc = RedisServer(name="redis", log_path=args.dir / "redis.log", port=args.port,
                              data_dir=args.dir)
        with running(svc):
            print(f"{args.cmd} up on 127.0.0.1:{args.port}; log {svc.log_path}; Ctrl-C stops it",
                  flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while svc.alive():
                    time.sleep(0.5)
        return 0
    except ServiceStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""Real servers for the tests: Mosquitto, VictoriaMetrics, influxd 1.x — on free loopback ports.

Each is a real process from Debian's packages, with its own temp dir, started and stopped by the
test that needs it (the outage tests stop and restart them on the same port).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

# Ports handed out below the kernel's ephemeral range (32768-60999 on Debian), one block per
# pytest-xdist worker: a port probed free and released here can then be taken neither by another
# worker's probe nor by any process's outgoing connection before the server binds it.
_PORT_FLOOR = 10000
_PORT_BLOCK = 2500
_next_port: int | None = None


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, from this test worker's own block."""
    global _next_port
    first = _PORT_FLOOR + (_worker_index() % 8) * _PORT_BLOCK
    if _next_port is None or not first <= _next_port < first + _PORT_BLOCK:
        # Each process starts at its own place in the block: the suites of other checkouts on the
        # same machine (their worker N has block N too) then do not probe the same ports in the
        # same order, where one could bind a port between another's probe and its server's start.
        _next_port = first + os.getpid() % _PORT_BLOCK
    for _ in range(_PORT_BLOCK):
        port = _next_port
        _next_port = first + (port + 1 - first) % _PORT_BLOCK
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{first + _PORT_BLOCK - 1}")


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Service:
    """A server process with a log file; subclasses say how to start it and when it is ready."""

    name = "service"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    def command(self) -> list[str]:
        """The command line."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the server answers."""
        return port_open(self.port)

    def start(self, timeout_s: float = 20.0) -> None:
        """Start and wait until ready."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout_s} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, wait, SIGKILL if it will not go."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        deadline = time.monotonic() + 5
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Mosquitto(Service):
    """Mosquitto with persistence (sessions and queued QoS 1 messages survive a restart) and no
    queue limit (its default of 1000 queued messages per client silently drops the rest)."""

    name = "mosquitto"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        password_file: Path | None = None,
        tls: tuple[Path, Path, Path] | None = None,
        conf_lines: list[str] | None = None,
    ) -> None:
        super().__init__(workdir, port)
        self.password_file = password_file
        self.tls = tls
        self.conf_lines = conf_lines
        """A whole config of the caller's (e.g. a shipped one rewritten to this port)."""

    def command(self) -> list[str]:
        """Writes the config, returns the command."""
        conf = self.workdir / "mosquitto.conf"
        if self.conf_lines is not None:
            conf.write_text("\n".join(self.conf_lines) + "\n")
            return ["mosquitto", "-c", str(conf)]
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if self.password_file else 'true'}",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "user root",
            "max_queued_messages 0",
            "max_inflight_messages 100",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if self.password_file:
            lines.append(f"password_file {self.password_file}")
        if self.tls:
            ca, cert, key = self.tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        conf.write_text("\n".join(lines) + "\n")
        return ["mosquitto", "-c", str(conf)]


def mosquitto_password_file(path: Path, user: str, password: str) -> Path:
    """A Mosquitto password file with one user."""
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(path), user, password], check=True, capture_output=True
    )
    return path


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


def _http(url: str, data: bytes | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class VictoriaMetrics(Service):
    """VictoriaMetrics: the InfluxDB v2 write API, read back through its export API.

    Without ``dedup`` it keeps every duplicate sample, so it is a strict detector of double writes;
    with ``dedup`` it keeps one sample per series and timestamp, as InfluxDB does.
    """

    name = "victoria-metrics"

    def __init__(self, workdir: Path, port: int | None = None, *, dedup: bool = False) -> None:
        super().__init__(workdir, port)
        self.dedup = dedup

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line."""
        cmd = [
            "victoria-metrics",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.workdir / 'data'}",
            "-retentionPeriod=100y",
            "-loggerLevel=ERROR",
        ]
        if self.dedup:
            cmd.append("-dedup.minScrapeInterval=1ms")
        return cmd

    def ready(self) -> bool:
        """/health answers OK."""
        try:
            return _http(self.url + "/health", timeout=1)[1].strip() == b"OK"
        except OSError:
            return False

    def export(self, match: str = '{__name__=~"reading_.*"}') -> list[dict[str, Any]]:
        """Every series matching, with all its samples (flushes pending writes first)."""
        _http(self.url + "/internal/force_flush")
        query = urllib.parse.urlencode({"match[]": match})
        status, body = _http(f"{self.url}/api/v1/export?{query}")
        assert status == 200, body
        return [json.loads(line) for line in body.splitlines() if line.strip()]


class Influxd(Service):
    """InfluxDB 1.x (Debian's influxd): ``/write?db=`` and InfluxQL ``/query``."""

    name = "influxd"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.rpc_port = free_port()

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """Writes the config, returns the command."""
        d = self.workdir
        conf = d / "influxd.conf"
        conf.write_text(f"""
reporting-enabled = false
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[logging]
  level = "warn"
[ifql]
  enabled = false
[continuous_queries]
  enabled = false
""")
        return ["influxd", "run", "-config", str(conf)]

    def ready(self) -> bool:
        """/ping answers 204."""
        try:
            return _http(self.url + "/ping", timeout=1)[0] == 204
        except OSError:
            return False

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run InfluxQL; returns the decoded JSON answer."""
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        status, body = _http(
            f"{self.url}/query?{urllib.parse.urlencode(params)}",
            data=b"" if not q.upper().startswith(("SELECT", "SHOW")) else None,
        )
        result: dict[str, Any] = json.loads(body)
        assert status == 200, result
        return result

    def create_database(self, name: str) -> None:
        """CREATE DATABASE (idempotent)."""
        self.query(f'CREATE DATABASE "{name}"')

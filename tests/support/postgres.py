"""A real PostgreSQL (Debian's ``postgresql`` package) for the tests, on a free loopback port.

One server per test session (``initdb`` takes seconds); each test gets a database of its own.
The cluster belongs to a non-root user: as root, the ``postgres`` user Debian's package creates
(``initdb`` refuses to run as root). The superuser ``etalon`` logs in over TCP with a password
(scram-sha-256), as the hub does in production; durability settings are relaxed for speed — the
tests kill hubs, never this server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from tests.support.services import free_port, port_open

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
PASSWORD_ENV = "ETALON_TEST_PG_PASSWORD"


def pg_binary(name: str) -> str:
    """The newest installed PostgreSQL's program ``name``."""
    for directory in BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian package postgresql)")
    return found


class PostgresServer:
    """A PostgreSQL cluster in a temp dir, started and stopped by the test session."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="etalon-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.user = "etalon"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.root / "postgres.log"
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            self._run_as = {"user": account.pw_uid, "group": account.pw_gid}
            self._owner = (account.pw_uid, account.pw_gid)
        else:
            self._owner = (os.getuid(), os.getgid())

    def _own(self, path: Path) -> None:
        os.chown(path, *self._owner)

    def start(self, timeout_s: float = 60.0) -> None:
        """initdb, then start the server and wait until it takes connections."""
        self.data.mkdir(mode=0o700)
        self._own(self.data)
        self._own(self.root)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        self._own(pwfile)
        subprocess.run(
            [
                pg_binary("initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            cwd=self.root,
            timeout=120,
            **self._run_as,
        )
        pwfile.unlink()
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            [
                pg_binary("postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=64MB",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
            **self._run_as,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{self.log_tail()}")
            if port_open(self.port):
                try:
                    with psycopg.connect(self.conninfo("postgres"), password=self.password):
                        return
                except psycopg.OperationalError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres not ready after {timeout_s} s:\n{self.log_tail()}")

    def conninfo(self, dbname: str) -> str:
        """A libpq connection string without the password."""
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={self.user}"

    def create_database(self, prefix: str = "t") -> str:
        """A new, empty database; returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            self.conninfo("postgres"), password=self.password, autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a test's database (closing what is still connected to it)."""
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(
                self.conninfo("postgres"), password=self.password, autocommit=True
            ) as conn,
        ):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Fast shutdown, then remove the cluster."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def database_settings(server: PostgresServer, dbname: str) -> dict[str, Any]:
    """The ``database:`` section of a hub config for a test's database (password from the
    environment variable ``PASSWORD_ENV``, which the fixture sets)."""
    return {
        "url": server.conninfo(dbname),
        "password": {"env": PASSWORD_ENV},
        "pool_min": 1,
        "pool_max": 4,
    }

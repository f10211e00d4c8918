"""A throwaway PostgreSQL server on 127.0.0.1 for the scale-out tests: a fresh cluster, a free port, a password.

It runs Debian's server binaries (package postgresql, which ``.ci/run`` installs; found in
``/usr/lib/postgresql/*/bin``): ``initdb`` into a temporary folder, then ``postgres`` in the
foreground with its socket in that folder. Both refuse to run as root, so as root they run as the
``postgres`` user (``runuser``). TCP logins need the password (scram-sha-256). Use the fixture:

    def test_x(postgres):
        url = postgres.database("study1")     # a new database: postgresql://edgesmith:...@127.0.0.1:PORT/study1
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

USER, PASSWORD = "edgesmith", "s3cret-for-tests"


@dataclass
class Postgres:
    """A running test server."""

    bin_dir: Path
    port: int
    folder: Path

    def url(self, database: str = "postgres", password: str = PASSWORD, **query) -> str:
        tail = "&".join(f"{k}={v}" for k, v in query.items())
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}{'?' + tail if tail else ''}"

    def database(self, name: str) -> str:
        """Create database ``name``; return its URL."""
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def sql(self, statement: str, database: str = "postgres", check: bool = True) -> str | None:
        """Run ``statement`` with psql; return its unaligned output (None on an error when not ``check``)."""
        done = subprocess.run([str(self.bin_dir / "psql"), "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port),
                               "-U", USER, "-d", database, "-c", statement], capture_output=True, text=True,
                              env={**os.environ, "PGPASSWORD": PASSWORD}, timeout=30)
        if done.returncode != 0 and not check:
            return None
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def server_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` holding initdb and postgres, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb") if Path(p).with_name("postgres").exists()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0) if found else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(argv: list) -> list:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _wait_until_ready(bin_dir: Path, port: int, server: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"postgres exited with status {server.returncode}: {log.read_text()[-1000:]}")
        ready = subprocess.run([str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)])
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"postgres did not start within {seconds} s: {log.read_text()[-1000:]}")


@pytest.fixture(scope="session")
def postgres():
    """Start a PostgreSQL server for the test session; yield a :class:`Postgres`; stop it and delete its files."""
    bin_dir = server_binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    with running_postgres(bin_dir) as server:
        yield server


@contextlib.contextmanager
def running_postgres(bin_dir: Path):
    """A fresh server from ``bin_dir`` while the ``with`` block runs (the fixture's, and benchmarks/scale.py's)."""
    folder = Path(tempfile.mkdtemp(prefix="edgesmith-pg-"))  # not under pytest's root-only tmp: postgres reads it
    (folder / "password").write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(folder / "password", "postgres", "postgres")
    data = folder / "data"
    subprocess.run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={folder / 'password'}",
                                    "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync",
                                    "--no-instructions"]),
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    log = folder / "server.log"
    with open(log, "wb") as sink:  # a file, not a pipe: the server must never block on its log
        server = subprocess.Popen(_as_server_user([str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                                                   "-k", str(folder), "-c", "listen_addresses=127.0.0.1",
                                                   "-c", "fsync=off", "-c", "synchronous_commit=off",
                                                   "-c", "full_page_writes=off", "-c", "max_connections=60"]),
                                  stdout=sink, stderr=sink, start_new_session=True)
    try:
        _wait_until_ready(bin_dir, port, server, log)
        yield Postgres(bin_dir=bin_dir, port=port, folder=folder)
    finally:
        # SIGINT is PostgreSQL's "fast" shutdown: it ends the sessions of workers a test left behind
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)

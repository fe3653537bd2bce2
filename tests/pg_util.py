"""A real PostgreSQL server for the tests: initdb in a temporary folder, a free port, stopped at
the end. Never a mock. ``make test`` installs Debian's ``postgresql`` when it is missing; without
it (or without psycopg) the PostgreSQL variants skip with the reason."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from maskface.service.launch import free_port


def _pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (PATH or Debian's versioned folder)."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(d) / "initdb").exists():
            return Path(d)
    return None


class PostgresServer:
    """One throw-away server. As root it runs as the ``postgres`` user (initdb refuses root)."""

    def __init__(self) -> None:
        bindir = _pg_bin()
        if bindir is None:
            pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql)")
        pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg (the 'serve' extra)")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="maskface-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o755)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-instructions")
        # fsync off: a test server's files need not survive a power cut (it is deleted after).
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self._as, str(self.bindir / tool), *args]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"{tool} failed: {res.stdout[-1000:]}{res.stderr[-1000:]}")

    def new_database(self) -> str:
        """A fresh, empty database on this server; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the whole test session."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


def wait_for(cond, timeout: float = 5.0, step: float = 0.05):
    """Poll ``cond()`` until it is truthy; returns its last value."""
    deadline = time.time() + timeout
    while True:
        value = cond()
        if value or time.time() > deadline:
            return value
        time.sleep(step)

"""Run ``maskface serve`` as a child process on a free loopback port and wait until it answers.

The one way the test suite, ``scripts/loadtest.py`` and ``scripts/replicas.py`` start a real
server (a separate process, as a site runs it), so a change to the start-up is made once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(db: str | Path, log: Path, port: int, config: Path | None = None,
          threads: str | None = None) -> subprocess.Popen:
    """Start ``maskface serve --db DB`` on ``127.0.0.1:port``, its output appended to ``log``.

    ``threads`` sets ``MASKFACE_THREADS`` for the server (``None``: the caller's environment
    as it is).
    """
    cmd = [sys.executable, "-c", "from maskface.cli import main; main()", "serve", "--host",
           "127.0.0.1", "--port", str(port), "--db", str(db), "--log-level", "warning"]
    if config is not None:
        cmd += ["--config", str(config)]
    env = {**os.environ, **({"MASKFACE_THREADS": threads} if threads else {})}
    with open(log, "ab") as out:  # the child keeps its own handle
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def wait_healthy(proc: subprocess.Popen, url: str, log: Path | None = None,
                 timeout: float = 120) -> None:
    """Return once ``url/v1/health`` answers 200; ``RuntimeError`` (with the log's tail) if the
    process exits first or ``timeout`` seconds pass (the process is then killed)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.is_file() else ""
            raise RuntimeError(f"server {url} exited at start (code {proc.returncode}): {tail}")
        try:
            with urllib.request.urlopen(f"{url}/v1/health", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server {url} did not answer within {timeout:.0f} s")


def start(db: str | Path, log: Path, config: Path | None = None, port: int | None = None,
          timeout: float = 120, threads: str | None = None) -> tuple[subprocess.Popen, str]:
    """:func:`spawn` then :func:`wait_healthy`: a running server and its base URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn(db, log, port, config, threads)
    wait_healthy(proc, url, log, timeout)
    return proc, url

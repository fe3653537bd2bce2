"""`make demo` / `make test` install steps: pip must print no red dependency-resolver ERROR.

pip checks the packages it has just installed against everything already in the venv; the
weight carriers, installed --no-deps, pin ancient versions (numpy==1.19.2, torch==1.6.0). So in
a fresh venv every install that resolves dependencies must run before the --no-deps ones, and
once the carriers are in the venv a later resolving install must not run that check. Read from
``make -n`` (prints the commands without running them).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _pip_installs(venv: Path, target: str) -> list[str]:
    res = subprocess.run(["make", "-n", f"VENV={venv}", target], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    return [ln for ln in res.stdout.splitlines() if " pip " in ln and " install " in ln
            and "--upgrade pip" not in ln]


@pytest.mark.parametrize("target", ["demo", "test"])
def test_fresh_venv_resolves_everything_before_the_no_deps_carriers(tmp_path, target):
    installs = _pip_installs(tmp_path / "venv", target)
    no_deps = [i for i, ln in enumerate(installs) if "--no-deps" in ln]
    assert no_deps and any("-e " in ln for ln in installs), installs
    after = [ln for ln in installs[no_deps[0]:] if "--no-deps" not in ln]
    assert after == [], f"resolving install after a --no-deps one: {after}"


def test_later_install_into_a_venv_holding_the_carriers_skips_the_conflict_check(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".core").touch()  # 'make demo' ran: the carriers are installed
    installs = _pip_installs(venv, "test")
    resolving = [ln for ln in installs if "--no-deps" not in ln]
    assert resolving and all("--no-warn-conflicts" in ln for ln in resolving), resolving

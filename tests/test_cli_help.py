"""The CLI's first impression: every --help page reads plainly, and starting the CLI imports no
heavy module (they load inside the commands that need them)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import typer.main
from typer.testing import CliRunner

from maskface.cli import load_commands

# Python type tags recent Typer versions print beside each parameter
TYPE_TAG = re.compile(r"<(bool|str|int|float|path|file|dir|datetime|list\[[^>]*\])[^>]*>")
# (pydantic is not listed: Typer itself imports it to run a command)
HEAVY = ("numpy", "cv2", "onnxruntime", "torch", "fastapi", "PIL", "scipy", "tqdm")


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(cmd, prefix):
        paths.append(prefix)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(load_commands()), [])
    return paths


def test_help_pages_show_no_internal_type_tags():
    runner = CliRunner()
    paths = _command_paths()
    assert len(paths) > 20
    for path in paths:
        res = runner.invoke(load_commands(), [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        assert not TYPE_TAG.search(res.output), (path, TYPE_TAG.findall(res.output))
    out = runner.invoke(load_commands(), ["detect", "--help"]).output
    assert re.search(r"--out\s+-o\s+PATH", out) and re.search(r"--stride\s+INTEGER", out)


def _modules_after(*argv: str) -> list[str]:
    code = (f"import sys; sys.argv = ['maskface', *{list(argv)!r}]\n"
            "from maskface.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(__import__('json').dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_help_and_models_import_no_heavy_module():
    assert _modules_after("--help") == []
    assert _modules_after("detect", "--help") == []
    assert _modules_after("models") == []


def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "maskface.cli", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "COMMAND [ARGS]" in res.stdout, res.stderr

"""The CLI's first impression: every --help page reads plainly, and starting the CLI imports no
heavy module (they load inside the commands that need them)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import typer.main
from typer.testing import CliRunner

import maskface
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


def test_bracketed_words_in_option_help_are_printed():
    """Rich took "[policy]" and "[retention]" in option help for markup and printed "the
    config's  events_days": every bracketed word an option's help names must be shown."""
    runner = CliRunner()
    root = typer.main.get_command(load_commands())
    checked = 0
    for path in _command_paths():
        cmd = root
        for name in path:
            cmd = cmd.commands[name]
        words = {w for p in getattr(cmd, "params", []) for w in
                 re.findall(r"\[([a-z_]+)\]", getattr(p, "help", None) or "")}
        if words:
            out = runner.invoke(load_commands(), [*path, "--help"]).output
            for w in words:
                checked += 1
                assert f"[{w}]" in out, (path, w)
    assert checked >= 2


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


def test_out_of_range_numbers_are_refused_before_anything_runs(tmp_path):
    """Each of these ran with nonsense: a traceback (gallery-bench --n 0, batch --det-size -5),
    a threshold no cosine reaches (identify --threshold 5 or nan: everyone unknown), or harm:
    ``people remask --templates -1`` replaced every masked template with none."""
    db = str(tmp_path / "g.db")
    for args in (["gallery-bench", "--n", "0"], ["gallery-bench", "--queries", "0"],
                 ["batch", "x.jpg", "--det-size", "-5"], ["bench", "--det-size", "0"],
                 ["bench", "--threads", "0"], ["watch", "x.mp4", "--det-size", "8"],
                 ["identify", "x.jpg", "--threshold", "5"], ["identify", "x.jpg", "--threshold",
                                                             "nan"],
                 ["verify", "a.jpg", "b.jpg", "--threshold", "-3"],
                 ["people", "remask", "--db", db, "--templates", "-1"],
                 ["eval", "identify", "--report", "r.json", "--enrol", "0"],
                 ["eval", "identify", "--report", "r.json", "--unknown-fraction", "1"],
                 ["eval", "liveness", str(tmp_path), "--threshold", "1.5"]):
        res = CliRunner().invoke(load_commands(), args)
        assert res.exit_code == 2, (args, res.output)
        assert "Invalid value for '--" in res.output and "Traceback" not in res.output, args
    assert not (tmp_path / "g.db").exists()


def test_a_folder_given_as_the_file_to_write_is_refused_before_anything_runs(tmp_path):
    """`eval compare … --report DIR` ran, then said "DIR: Is a directory"; `events --csv DIR`
    said "DIR.part: Is a directory". Every report or export file is checked when parsed."""
    here, db = str(tmp_path), str(tmp_path / "g.db")
    blocker = tmp_path / "a.json"
    blocker.write_text("{}")
    for out, said in ((here, f"{here} is a folder"),
                      (str(blocker / "r.json"), f"{blocker} is a file, so")):
        for args in (["eval", "pipeline", "--scenes", here, "--report", out],
                     ["eval", "classifier", here, "--report", out],
                     ["eval", "verify", "--report", out], ["eval", "identify", "--report", out],
                     ["eval", "liveness", here, "--report", out],
                     ["eval", "compare", str(blocker), str(blocker), "--report", out],
                     ["calibrate", "--db", db, "--report", out], ["bench", "--report", out],
                     ["events", "--db", db, "--csv", out], ["db", "export", out, "--db", db]):
            res = CliRunner().invoke(load_commands(), args)
            assert res.exit_code == 2, (args, res.output)
            assert said in " ".join(res.output.replace("│", " ").split()), (args, res.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_commands_without_their_extra_say_so_in_one_line(tmp_path):
    """Without an optional part (PyTorch, onnx, Ray, FastAPI, matplotlib) each command that
    needs it fails at once with one line naming the extra to install, and writes nothing."""
    out = str(tmp_path / "run")
    assets = str(Path(maskface.__file__).parent / "assets")
    for args, missing, doing, extra in (
            (["train", "classifier", "--data", assets, "--out", out], "torch", "training",
             "train"),
            (["train", "recognizer", "--out", out], "torch", "training", "train"),
            (["train", "liveness", assets, "--out", out], "onnx", "training", "train"),
            (["train", "alignment", "--out", out], "onnx", "fitting", "train"),
            (["batch", assets, "--out", out], "ray", "batch analysis", "scale"),
            (["serve", "--port", "9"], "fastapi", "the service", "serve"),
            (["eval", "classifier", assets, "--report", f"{out}/r.json"], "matplotlib",
             "evaluation (its plots)", "eval"),
            (["calibrate", "--db", f"{out}/g.db"], "matplotlib", "calibrate's ROC plot",
             "eval")):
        code = (f"import sys; sys.modules[{missing!r}] = None; "
                f"sys.argv = ['maskface', *{args!r}]; "
                "from maskface.cli import main; main()")
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 1, run.stderr
        assert run.stderr.strip().splitlines() == [
            f"error: {doing} needs the '{extra}' extra ({missing} missing): "
            f"pip install 'maskface[{extra}]'"]
        assert not (tmp_path / "run").exists()


REPO = Path(__file__).resolve().parents[1]
# `maskface WORD [WORD] rest`, up to the next `maskface` in the same span
DOC_COMMAND = re.compile(r"(?:^|[\s(;&])maskface ([a-z][a-z-]*(?: [a-z][a-z-]*)?)(.*?)"
                         r"(?=\bmaskface [a-z]|$)")


def _doc_command_lines() -> list[tuple[str, str]]:
    """Every inline code span and code-block line of README.md and docs/ naming `maskface`."""
    found = []
    for md in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = md.read_text()
        spans = re.findall(r"`([^`\n]*maskface [^`\n]*)`", text)
        spans += [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
                  for line in block.splitlines() if "maskface " in line]
        found += [(md.name, span) for span in spans]
    return found


def test_every_command_and_option_the_docs_name_exists():
    """Docs that match the code: each `maskface CMD … --opt` in README.md and docs/ names a real
    command and one of its options (`a | b` alternatives are read as sibling sub-commands)."""
    root = typer.main.get_command(load_commands())
    spans = _doc_command_lines()
    assert len(spans) > 100  # the docs are read, not skipped
    wrong = []
    for doc, span in spans:
        for m in DOC_COMMAND.finditer(span):
            words = m.group(1).split()
            group, cmd, used = None, root, 0
            for w in words:
                if w not in getattr(cmd, "commands", {}):
                    break
                group, cmd, used = cmd, cmd.commands[w], used + 1
            if not used:
                wrong.append(f"{doc}: unknown command in `{span}`")
                continue
            if hasattr(cmd, "commands"):  # a group named on its own
                continue
            rest = " ".join(words[used:]) + m.group(2)
            for part in re.split(r"\s\|\s", rest):
                first = part.split()[0] if part.split() else ""
                target = group.commands.get(first, cmd) if part is not rest else cmd
                have = {o for p in target.params
                        for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
                for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", part):
                    if opt not in have | {"--help"}:
                        wrong.append(f"{doc}: `maskface {target.name}` has no {opt}: `{span}`")
    assert not wrong, "\n".join(wrong)

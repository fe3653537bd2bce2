"""``maskface batch`` on Ray in local mode: real images plus a corrupt one, then a resume."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.slow
N_IMAGES = 19


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def classifier() -> str | None:
    """The shipped mask classifier, or none (batch then only detects) where it is missing."""
    from maskface.errors import ModelError
    from maskface.models import model_path

    try:
        model_path("mask_classifier")
        return "default"
    except ModelError:
        return None


def test_batch_processes_reports_failures_and_resumes(ray_local, classifier, data_dir,
                                                      tmp_path):
    import pyarrow.parquet as pq

    from maskface.batch import run_batch

    images = sorted((data_dir / "scenes/dataroots/images").glob("*.jpg"))[:N_IMAGES]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(images[0].read_bytes()[:200])  # a truncated upload
    listing = tmp_path / "inputs.txt"
    listing.write_text("\n".join(str(p) for p in [*images, corrupt]) + "\n")
    out = tmp_path / "out"

    first = run_batch([str(listing)], out, batch_size=4, classifier=classifier, progress=False)
    assert (first.inputs, first.processed, first.failed, first.skipped) == (20, 19, 1, 0)
    assert "corrupt.jpg" in first.failures[0]
    assert first.faces >= N_IMAGES  # every chosen scene has at least one annotated face
    table = pq.read_table(out / "results")
    assert table.num_rows == 20
    rows = {r["path"]: r for r in table.to_pylist()}
    assert rows[str(corrupt)]["error"] and rows[str(corrupt)]["n_faces"] == 0
    ok = rows[str(images[0])]
    assert not ok["error"] and ok["n_faces"] == len(json.loads(ok["faces"])) > 0
    if classifier:
        assert first.mask_labels and sum(first.mask_labels.values()) == first.faces

    # A re-run skips what succeeded and tries the failed input again (it may have been fixed).
    second = run_batch([str(listing)], out, batch_size=4, classifier=classifier,
                       progress=False)
    assert (second.skipped, second.processed, second.failed, second.retried) == (19, 0, 1, 1)
    # The CLI over the same done-list: it still fails, so the exit code says so.
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    res = CliRunner().invoke(load_commands(), ["batch", str(listing), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "0 processed, 19 skipped (done before), 1 failed, 1 retried (failed before);" in (
        res.stdout)

    # A replaced input (new size and mtime) is processed again, here as JSON lines.
    corrupt.write_bytes(images[1].read_bytes())
    st = os.stat(corrupt)
    os.utime(corrupt, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = run_batch([str(listing)], out, fmt="jsonl", classifier=classifier, progress=False)
    assert (third.skipped, third.processed, third.failed) == (19, 1, 0)
    lines = [json.loads(x) for f in (out / "results").glob("*.jsonl")
             for x in f.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["path"] == str(corrupt) and lines[0]["n_faces"] > 0
    assert len(list(out.glob("summary-*.json"))) == 4  # one per run, the CLI run too


def test_files_in_folders_that_are_not_images_are_counted_not_silently_dropped(
        tmp_path, astronaut_path):
    from typer.testing import CliRunner

    from maskface.batch import list_inputs
    from maskface.cli import load_commands

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "door.jpg").write_bytes(astronaut_path.read_bytes())
    (folder / "notes.txt").write_text("shift rota")
    (folder / "labels.csv").write_text("a,b\n")
    files, problems, passed_over = list_inputs([str(folder)])
    assert [f.path for f in files] == [str(folder / "door.jpg")] and problems == []
    assert passed_over == "2 files in folders skipped: not an image or video (1 .csv, 1 .txt)"

    # a video among the images is not usable here: counted and named apart from the images
    # (the line said "1 inputs: 1 processed, 0 failed" above "failed: clip.mp4: a video")
    (folder / "clip.mp4").write_bytes(b"\x00" * 64)
    res = CliRunner().invoke(load_commands(), ["batch", str(folder), "--out",
                                               str(tmp_path / "out1")])
    assert res.exit_code == 1, res.output
    assert res.stdout.startswith("1 image: 1 processed, 0 skipped (done before), 0 failed;")
    assert "; 1 other input not usable" in res.stdout.splitlines()[0]
    assert f"  not usable: {folder / 'clip.mp4'}: a video (use 'maskface watch')" in res.stderr
    (folder / "clip.mp4").unlink()

    (folder / "door.jpg").unlink()  # nothing left to analyse: the error says why
    res = CliRunner().invoke(load_commands(), ["batch", str(folder), "--out",
                                               str(tmp_path / "out")])
    assert res.exit_code == 1
    assert res.stderr.strip() == (
        f"error: no images found in: {folder} ({folder}: no images or videos in this folder) "
        "(2 files in folders skipped: not an image or video (1 .csv, 1 .txt))")
    assert not (tmp_path / "out").exists()


def test_a_torn_manifest_line_does_not_swallow_the_next_record(tmp_path):
    """New records went straight after a line torn by a crash, glued to it and lost: the input
    was analysed again on every later run and the results held it twice."""
    from maskface.batch import InputFile, Manifest

    path = tmp_path / "manifest.jsonl"
    before, after = InputFile("/a.jpg", 1, 2), InputFile("/b.jpg", 3, 4)
    Manifest(path).add([(before, None)])
    with open(path, "a") as f:
        f.write('{"path": "/x/torn')
    Manifest(path).add([(after, None)])
    reread = Manifest(path)
    assert before in reread and after in reread and len(reread) == 2


def test_bad_model_options_are_one_line_before_ray_starts(tmp_path, astronaut_path,
                                                          monkeypatch):
    """They were raised in every Ray actor's constructor: ~250 lines of Ray traceback."""
    from typer.testing import CliRunner

    from maskface.batch import job
    from maskface.cli import load_commands

    def no_ray(*args):
        raise AssertionError("Ray started")

    monkeypatch.setattr(job, "_init_ray", no_ray)
    out = tmp_path / "out"
    for options, said in (
            (["--detector", "foo"], "unknown detector 'foo'"),
            (["--classifier", "/nonexist.onnx"], "/nonexist.onnx"),
            (["--detector", "mtcnn", "--det-size", "33"], "mtcnn detector has no option")):
        res = CliRunner().invoke(load_commands(), ["batch", str(astronaut_path), "--out",
                                                   str(out), "--format", "jsonl", *options])
        assert res.exit_code == 1, (options, res.output)
        assert res.stderr.startswith("error: ") and said in res.stderr, (options, res.stderr)
        assert len(res.stderr.splitlines()) == 1 and res.stdout == "", (options, res.output)
    assert not out.exists()


def test_an_input_that_failed_is_not_done(tmp_path):
    """Failed inputs were recorded as done: never retried, though a file may have been fixed in
    place (or the failure been ours), and a re-run counted them as skipped and exited 0."""
    from maskface.batch import InputFile, Manifest

    path = tmp_path / "manifest.jsonl"
    bad, good = InputFile("/bad.jpg", 1, 2), InputFile("/good.jpg", 3, 4)
    Manifest(path).add([(bad, "/bad.jpg: not an image"), (good, None)])
    reread = Manifest(path)
    assert bad not in reread and bad.key in reread.failed and good in reread
    reread.add([(bad, None)])  # the retry succeeded: its latest line counts
    for manifest in (reread, Manifest(path)):
        assert bad in manifest and not manifest.failed and len(manifest) == 2

"""`maskface detect` on real images, folders, globs, videos and bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from badimages import write_awkward_images, write_bad_files
from maskface.cli import load_commands

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(load_commands(), list(args), catch_exceptions=False)


def test_detect_folder_with_bad_files_processes_rest_and_fails(astronaut_path, tmp_path):
    inputs = tmp_path / "in"
    write_awkward_images(astronaut_path, inputs / "ok")
    bad = write_bad_files(astronaut_path, inputs / "bad")
    out = tmp_path / "out"
    res = invoke("detect", str(inputs), "--out", str(out), "--classifier", "none")
    assert res.exit_code == 1
    stderr = res.stderr
    for name in bad:
        lines = [ln for ln in stderr.splitlines() if name in ln and ln.startswith("error:")]
        assert lines, f"no one-line error for {name}: {stderr}"
    assert "Traceback" not in res.output
    assert "6 of 11 inputs processed" in res.stdout
    for stem in ("grey", "rgba", "cmyk", "palette", "deep16", "exif_rotated"):
        record = json.loads((out / f"{stem}.json").read_text())
        assert len(record["faces"]) == 1, stem
        assert (out / f"{stem}.jpg").stat().st_size > 1000


def test_detect_missing_path_and_glob(astronaut_path, tmp_path):
    res = invoke("detect", str(tmp_path / "nothing.jpg"), str(tmp_path / "*.png"),
                 "--out", str(tmp_path / "o"), "--classifier", "none")
    assert res.exit_code == 1
    assert "no such file" in res.stderr and "no file matches" in res.stderr
    res = invoke("detect", "https://example.com/door.jpg", "--out", str(tmp_path / "o"),
                 "--classifier", "none")
    assert res.exit_code == 1 and "URLs are not fetched" in res.stderr, res.stderr


def test_a_folder_without_images_is_named_not_no_inputs(astronaut_path, tmp_path):
    """An empty folder (or one whose only link leads back up) said "no inputs given"."""
    empty, looped = tmp_path / "empty", tmp_path / "looped" / "sub"
    empty.mkdir()
    looped.mkdir(parents=True)
    (looped / "up").symlink_to("..")
    (tmp_path / "looped" / "notes.txt").write_text("not an image")
    res = invoke("detect", str(empty), str(looped.parent), str(astronaut_path),
                 "--out", str(tmp_path / "o"), "--classifier", "none")
    assert res.exit_code == 1
    assert f"error: {empty}: no images or videos in this folder" in res.stderr.splitlines()
    assert f"error: {looped.parent}: no images or videos in this folder" in res.stderr
    assert "1 of 3 inputs processed" in res.stdout and "1 file in folders skipped" in res.stdout


def test_detect_json_lines(astronaut_path, tmp_path):
    res = invoke("detect", str(astronaut_path), "--out", str(tmp_path), "--json",
                 "--classifier", "none")
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout.strip().splitlines()[-1])
    (face,) = record["faces"]
    x1, y1, x2, y2 = face["box"]
    assert 150 < x1 < x2 < 300 and 40 < y1 < y2 < 220  # her face, not the flag or the suit


@pytest.mark.slow
def test_detect_video_with_stride(astronaut, tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 512))
    for k in range(12):
        writer.write(np.roll(astronaut, 4 * k, axis=1))  # a slow pan
    writer.release()
    out = tmp_path / "out"
    res = invoke("detect", str(video), "--out", str(out), "--stride", "3",
                 "--classifier", "none")
    assert res.exit_code == 0, res.output
    record = json.loads((out / "clip.json").read_text())
    assert [f["frame"] for f in record["frames"]] == [0, 3, 6, 9]
    xs = [f["faces"][0]["box"][0] for f in record["frames"]]
    assert all(b > a for a, b in zip(xs, xs[1:]))  # the box follows the pan
    cap = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    # a stride far past the clip: its first frame, not "cannot write video" (fps 10/10000)
    res = invoke("detect", str(video), "--out", str(out), "--stride", "10000",
                 "--classifier", "none")
    assert res.exit_code == 0, res.output


def test_unknown_detector_is_one_line_error(astronaut_path, tmp_path):
    res = invoke("detect", str(astronaut_path), "--detector", "haar", "--out", str(tmp_path))
    assert res.exit_code == 1
    assert res.stderr.strip().startswith("error: unknown detector 'haar'")


def test_demo_labels_the_bare_and_the_masked_astronaut(tmp_path):
    res = invoke("demo", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    bare = json.loads((tmp_path / "astronaut.json").read_text())
    masked = json.loads((tmp_path / "astronaut_masked.json").read_text())
    assert [f["mask"]["label"] for f in bare["faces"]] == ["without_mask"]
    assert [f["mask"]["label"] for f in masked["faces"]] == ["with_mask"]
    assert (tmp_path / "astronaut_masked.jpg").stat().st_size > 10_000
    # the door: the enrolled person is let in with a mask on, refused without one
    door = res.stdout[res.stdout.index("door ("):].splitlines()
    assert door[1].startswith("  astronaut_masked.jpg: GRANTED: Eileen Collins, score ")
    assert door[1].endswith("masked-unmasked)")
    assert door[2].startswith("  astronaut.jpg: DENIED: Eileen Collins, score ")
    assert door[2].endswith("; a mask is required")


def test_out_that_is_a_file_is_a_one_line_error(astronaut_path, tmp_path):
    existing = tmp_path / "taken.txt"
    existing.write_text("not a folder")
    for args in (["detect", str(astronaut_path)], ["demo"]):
        res = invoke(*args, "--out", str(existing))
        assert res.exit_code == 1, res.output
        assert res.stderr.strip().splitlines() == [
            f"error: {existing}: exists and is not a folder; give --out a folder"]
        assert existing.read_text() == "not a folder"


def test_errors_of_several_inputs_are_whole_lines_without_bar_debris(astronaut_path, tmp_path):
    # Piped (not a terminal), no progress bar is drawn: its carriage returns and blanking
    # spaces would leave space-filled lines between the error lines.
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        (inputs / f"bad{i}.jpg").write_bytes(b"not a jpeg")
    (inputs / "ok.jpg").write_bytes(astronaut_path.read_bytes())
    res = invoke("detect", str(inputs), "--out", str(tmp_path / "o"), "--classifier", "none")
    assert res.exit_code == 1
    assert "\r" not in res.stderr
    lines = res.stderr.splitlines()
    assert all(ln.strip() for ln in lines), lines
    assert [ln for ln in lines if ln.startswith("error:")] == [
        f"error: {inputs / f'bad{i}.jpg'}: not a recognised image format" for i in range(3)]


def test_folder_summary_says_what_was_skipped(astronaut_path, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.jpg").write_bytes(astronaut_path.read_bytes())
    (inputs / "notes.txt").write_text("x")
    (inputs / "list.txt").write_text("y")
    (inputs / "data.csv").write_text("z")
    res = invoke("detect", str(inputs), "--out", str(tmp_path / "o"), "--classifier", "none")
    assert res.exit_code == 0, res.output
    assert "1 of 1 inputs processed" in res.stdout
    assert "3 files in folders skipped: not an image or video (2 .txt, 1 .csv)" in res.stdout
    # a file given by name is an input, not skipped (and fails as one)
    res = invoke("detect", str(inputs), str(inputs / "notes.txt"), "--out",
                 str(tmp_path / "o"), "--classifier", "none")
    assert res.exit_code == 1 and "2 files in folders skipped" in res.stdout
    assert "notes.txt: not a recognised image format" in res.stderr


def test_out_in_the_inputs_own_folder_never_overwrites_an_input(astronaut_path, astronaut,
                                                                 tmp_path, monkeypatch):
    """`detect p.jpg clip.mp4 --out .` wrote the annotated copies over p.jpg and clip.mp4
    (the video while it was being read: 3 of 10 frames, exit 0)."""
    photo = tmp_path / "p.jpg"
    photo.write_bytes(astronaut_path.read_bytes())
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (512, 512))
    for k in range(10):
        writer.write(np.roll(astronaut, 4 * k, axis=1))
    writer.release()
    before = {p: p.read_bytes() for p in (photo, video)}
    monkeypatch.chdir(tmp_path)
    res = invoke("detect", "p.jpg", "clip.mp4", "--out", ".", "--profile", "kiosk",
                 "--classifier", "none")
    assert res.exit_code == 0, res.output
    assert all(p.read_bytes() == data for p, data in before.items())
    assert (tmp_path / "p_2.jpg").is_file() and (tmp_path / "p_2.json").is_file()
    record = json.loads((tmp_path / "clip_2.json").read_text())
    assert len(record["frames"]) == 10


def test_a_video_is_known_by_its_bytes_when_its_name_does_not_say(astronaut, tmp_path):
    """A phone clip saved as .3gp, or without an extension, was sent to the image loader
    ("a video file, not an image") or skipped in folders, though watch read it."""
    clip = tmp_path / "src.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (512, 512))
    for _ in range(3):
        writer.write(astronaut)
    writer.release()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "clip.3gp").write_bytes(clip.read_bytes())
    (folder / "noext").write_bytes(clip.read_bytes())
    (folder / "notes").write_text("not a video")
    out = tmp_path / "o"
    res = invoke("detect", str(folder), "--out", str(out), "--profile", "kiosk",
                 "--classifier", "none")
    assert res.exit_code == 0, res.output
    assert "2 of 2 inputs processed" in res.stdout and "1 file in folders skipped" in res.stdout
    for name in ("clip", "noext"):
        assert len(json.loads((out / f"{name}.json").read_text())["frames"]) == 3

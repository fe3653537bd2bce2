"""Liveness stage: crop rule, the shipped model, and NUAA frames (skip without shared data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskface.liveness.crop import crop_window, to_reference

NUAA = "liveness/nuaa"


def test_crop_window_shifts_inside_the_frame_instead_of_clipping():
    # A box near the left edge: the 2.7x window is shifted right, keeping its full size.
    box = np.array([0, 100, 99, 199], np.float32)  # reference w = h = 100
    x0, y0, x1, y1 = crop_window(box, 2.7, 640, 480)
    assert x0 == 0 and (x1 - x0) == pytest.approx(270, abs=1)
    assert (y1 - y0) == pytest.approx(270, abs=1)
    # Too big for the frame: the scale is clamped so the window still fits.
    x0, y0, x1, y1 = crop_window(np.array([200, 100, 399, 399], np.float32), 4.0, 640, 480)
    assert y0 >= 0 and y1 <= 479 and x0 >= 0 and x1 <= 639


def test_box_mapping_widens_shortens_and_moves_down():
    ref = to_reference(np.array([100, 100, 200, 240], np.float32), (1.143, 0.892, 0.0, 0.056))
    assert ref[2] - ref[0] == pytest.approx(114.3, abs=0.01)
    assert ref[3] - ref[1] == pytest.approx(140 * 0.892, abs=0.01)
    assert (ref[1] + ref[3]) / 2 == pytest.approx(170 + 0.056 * 140, abs=0.01)


@pytest.fixture(scope="module")
def nuaa(data_dir):
    root = data_dir / NUAA
    if not root.is_dir():
        pytest.skip(f"NUAA liveness frames not found at {root}")
    return root


@pytest.fixture(scope="module")
def live_pipeline():
    from maskface.pipeline import Pipeline

    return Pipeline("yunet", classifier=None, liveness=True)


def _first(root, kind, subject):
    return sorted((root / kind / subject).glob("*.jpg"))[0]


@pytest.mark.parametrize("subject", ["0002", "0011"])
def test_print_attack_is_spoof_and_live_face_is_live(nuaa, live_pipeline, subject):
    spoof = live_pipeline.analyze(_first(nuaa, "print", subject))
    live = live_pipeline.analyze(_first(nuaa, "real", subject))
    s = max(spoof.faces, key=lambda f: f.score).liveness
    lv = max(live.faces, key=lambda f: f.score).liveness
    assert s.label == "spoof" and s.score < 0.5
    assert lv.label == "live" and lv.score >= 0.5
    d = json.loads(live.to_json())
    assert {"score", "label", "threshold"} <= set(d["faces"][0]["liveness"])
    assert "liveness" in live.timings_ms


def test_batched_scores_equal_one_by_one(nuaa):
    from maskface.detect import create_detector
    from maskface.io.image import load_image
    from maskface.liveness import LivenessChecker

    img = load_image(_first(nuaa, "real", "0001"))
    det = create_detector("yunet").detect(img)
    boxes = np.concatenate([det.boxes, det.boxes + np.array([5, 3, 5, 3], np.float32)])
    lc = LivenessChecker("yunet")
    together = lc.scores(img, boxes)
    alone = np.array([lc.scores(img, b[None])[0] for b in boxes])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_eval_liveness_cli_on_a_subject(nuaa, tmp_path):
    """The eval command on one subject's frames: real figures, report and plots written."""
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    data = tmp_path / "data"
    for kind in ("real", "print"):
        (data / kind / "0004").mkdir(parents=True)
        for f in sorted((nuaa / kind / "0004").glob("*.jpg"))[:4]:
            (data / kind / "0004" / f.name).symlink_to(f)
    out = tmp_path / "out"
    res = CliRunner().invoke(load_commands(), ["eval", "liveness", str(data), "--report",
                                               str(out / "live.json")])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "live.json").read_text())
    assert rep["frames"] == 8 and rep["at_threshold"]["attacks"] == 4
    assert rep["at_threshold"]["apcer"] == 0.0 and rep["at_threshold"]["bpcer"] == 0.0
    assert rep["roc_auc"] == 1.0
    assert (out / "live_roc.png").stat().st_size > 0
    assert (out / "live_scores.png").stat().st_size > 0
    assert not (out / "live_errors.png").exists()  # every frame right: no sheet
    strict = tmp_path / "strict"  # a threshold no live frame reaches: all 4 on the sheet
    # (the older -o FOLDER form: FOLDER/report.json, plots beside it)
    res = CliRunner().invoke(load_commands(), ["eval", "liveness", str(data), "-o", str(strict),
                                               "--threshold", "0.9999"])
    assert res.exit_code == 0, res.output
    assert f"plot:   {strict / 'report_errors.png'}" in res.output
    import cv2

    sheet = cv2.imread(str(strict / "report_errors.png"))
    assert sheet.shape == (128 + 3 * 18 + 12, 4 * (128 + 6) + 6, 3)
    grey = tmp_path / "grey"
    res = CliRunner().invoke(load_commands(), ["eval", "liveness", str(data), "-r",
                                               str(grey / "report.json"), "--grey"])
    assert res.exit_code == 0, res.output
    assert "8 frames made grey" in res.output
    rows = json.loads((grey / "report.json").read_text())["rows"]
    by_path = {r["path"]: r["score"] for r in json.loads((out / "live.json").read_text())[
        "rows"]}
    assert json.loads((grey / "report.json").read_text())["grey"] is True
    assert any(abs(r["score"] - by_path[r["path"]]) > 0.01 for r in rows)  # really re-scored


def test_frame_errors_worst_first():
    from maskface.eval.liveness import frame_errors

    rows = [{"kind": "real", "score": 0.9}, {"kind": "real", "score": 0.2},
            {"kind": "real", "score": None}, {"kind": "print", "score": 0.7},
            {"kind": "print", "score": 0.95}, {"kind": "print", "score": None},
            {"kind": "real", "score": 0.4}, {"kind": "print", "score": 0.1}]
    got = frame_errors(rows, 0.5)
    assert [(r["kind"], r["score"]) for r in got] == [
        ("print", 0.95), ("print", 0.7), ("real", 0.2), ("real", 0.4), ("real", None)]


def test_eval_liveness_needs_both_classes(tmp_path):
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    (tmp_path / "real" / "s1").mkdir(parents=True)
    res = CliRunner().invoke(load_commands(), ["eval", "liveness", str(tmp_path)])
    assert res.exit_code != 0
    assert "attack folder" in res.output


@pytest.mark.slow
def test_train_liveness_splits_by_subject_and_exports_a_usable_model(nuaa, data_dir, tmp_path):
    """One short epoch on 4 subjects' frames: subjects never shared between splits, the ONNX
    loads in the inference stage and 'eval liveness --model' runs it."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    weights = data_dir.parent / "models" / "minifasnet"
    if not (weights / "2.7_80x80_MiniFASNetV2.pth").is_file():
        pytest.skip(f"MiniFASNet weights not found under {weights}")
    data = tmp_path / "site"
    for kind in ("real", "print"):
        for s in ("0001", "0002", "0003", "0004"):
            (data / kind / s).mkdir(parents=True)
            for f in sorted((nuaa / kind / s).glob("*.jpg"))[:3]:
                (data / kind / s / f.name).symlink_to(f)
    out = tmp_path / "run"
    res = CliRunner().invoke(load_commands(), [
        "train", "liveness", str(data), "-o", str(out), "--weights", str(weights),
        "--epochs", "1", "--batch", "8", "--val-frac", "0.25", "--test-frac", "0.25",
        "--threads", "1"])
    assert res.exit_code == 0, res.output
    card = json.loads((out / "liveness.card.json").read_text())
    split = card["split"]
    assert len(split["test"]) == len(split["val"]) == 1 and len(split["train"]) == 2
    assert not set(split["test"]) & set(split["train"]) and card["onnx_max_abs_diff"] < 1e-4
    assert card["frames"]["test"] == 6 and len(card["history"]) == 2
    res = CliRunner().invoke(load_commands(), [
        "eval", "liveness", str(data), "--model", str(out / "liveness.onnx"), "--report",
        str(tmp_path / "ev" / "report.json")])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert rep["model"].endswith("liveness.onnx") and rep["frames"] == 24


def test_grey_frames_get_no_liveness_verdict(nuaa, live_pipeline):
    """An infrared or monochrome camera: the models were trained on colour and score many
    live grey faces as attacks, so a grey frame gets ``unknown``, with the reason."""
    import cv2

    from maskface.liveness import is_grey_frame

    colour = cv2.imread(str(_first(nuaa, "real", "0002")))
    grey = cv2.cvtColor(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    ok, buf = cv2.imencode(".jpg", grey)  # a colour JPEG of a grey picture: chroma noise
    assert not is_grey_frame(colour) and is_grey_frame(grey)
    assert is_grey_frame(cv2.imdecode(buf, cv2.IMREAD_COLOR))
    lv = max(live_pipeline.analyze(grey).faces, key=lambda f: f.score).liveness
    assert (lv.label, lv.problem, lv.live) == ("unknown", "grey_frame", False)
    assert json.loads(live_pipeline.analyze(grey).to_json())["faces"][0]["liveness"][
        "problem"] == "grey_frame"
    assert max(live_pipeline.analyze(colour).faces, key=lambda f: f.score).liveness.live

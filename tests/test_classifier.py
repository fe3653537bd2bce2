"""The shipped mask classifier on real faces, and `maskface eval classifier`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from maskface.classify import MaskClassifier
from maskface.classify.crop import whole_image_crop
from maskface.cli import load_commands
from maskface.detect import create_detector
from maskface.io import load_image

runner = CliRunner()


@pytest.fixture(scope="module")
def classifier() -> MaskClassifier:
    return MaskClassifier()


def test_shipped_model_contract(classifier):
    assert set(classifier.labels) >= {"with_mask", "without_mask"}
    assert classifier.input_size >= 64
    p = classifier.predict_proba(np.zeros((3, classifier.input_size, classifier.input_size, 3),
                                          np.uint8))
    assert p.shape == (3, len(classifier.labels))
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


def test_default_names_the_shipped_default_everywhere(classifier, astronaut):
    """``--model default`` was "unknown model 'default'" in eval classifier (only the pipeline
    knew the word)."""
    other = MaskClassifier("default")
    assert other.labels == classifier.labels and other.three_way == classifier.three_way
    crops = classifier.crops(astronaut, np.array([[178, 56, 271, 180]], np.float32))
    np.testing.assert_array_equal(other.predict_proba(crops), classifier.predict_proba(crops))


def test_astronaut_is_unmasked(classifier, astronaut):
    det = create_detector("yunet").detect(astronaut)
    assert len(det) == 1
    pred = classifier.classify(astronaut, det.boxes)[0]
    assert pred.label == "without_mask"
    assert pred.probability > 0.9


@pytest.mark.data
def test_real_masked_and_unmasked_photos(classifier, data_dir):
    """The first 40 real photos of each class (file names sorted) are classified correctly, bar
    at most two (the real set has a few whole scenes and odd crops)."""
    real = data_dir / "mask-crops" / "real"
    if not real.is_dir():
        pytest.skip(f"{real} not found")
    for cls in ("with_mask", "without_mask"):
        paths = sorted((real / cls).glob("*.jpg"))[:40]
        crops = np.stack([whole_image_crop(load_image(p), classifier.input_size)
                          for p in paths])
        pred = np.array(classifier.labels)[classifier.predict_proba(crops).argmax(1)]
        assert (pred == cls).sum() >= len(paths) - 2, cls


@pytest.mark.data
def test_eval_classifier_cli_writes_report_and_plots(data_dir, tmp_path):
    real = data_dir / "mask-crops" / "real"
    if not real.is_dir():
        pytest.skip(f"{real} not found")
    data = tmp_path / "crops"
    for src, dst in (("with_mask", "masked"), ("without_mask", "not_masked")):  # aliases
        (data / dst).mkdir(parents=True)
        for p in sorted((real / src).glob("*.jpg"))[100:115]:
            (data / dst / p.name).symlink_to(p)
    (data / "masked" / "broken.jpg").write_bytes(b"not a jpeg")
    report = tmp_path / "out" / "cls.json"
    res = runner.invoke(load_commands(), ["eval", "classifier", str(data), "--report",
                                          str(report)], catch_exceptions=False)
    assert res.exit_code == 1, res.output  # the broken file is reported and fails the run
    assert "broken.jpg" in res.stderr
    assert "Traceback" not in res.output
    assert "\r" not in res.stderr  # not a terminal: no bar debris around the error line
    rep = json.loads(report.read_text())
    assert rep["n"] == 30
    cm = np.array(rep["confusion_matrix"])
    assert cm.sum() == 30
    assert rep["accuracy"] == pytest.approx(np.trace(cm) / 30)
    assert rep["per_class"]["with_mask"]["support"] == 15
    assert 0.0 <= rep["roc_auc"] <= 1.0
    lo, hi = rep["accuracy_ci95"]  # 15 crops of each class resampled apart
    assert lo <= rep["accuracy"] <= hi
    # the same crops as a grey (infrared) camera would give them
    grey = tmp_path / "out" / "grey.json"
    res = runner.invoke(load_commands(), ["eval", "classifier", str(data), "--report", str(grey),
                                          "--grey"], catch_exceptions=False)
    assert res.exit_code == 1 and "broken.jpg" in res.stderr
    rep_grey = json.loads(grey.read_text())
    assert rep_grey["grey"] is True and rep_grey["n"] == 30
    assert rep_grey["roc_curve"] != rep["roc_curve"]  # really re-scored
    for key in ("roc", "confusion", "reliability"):
        assert (tmp_path / "out" / f"cls_{key}.png").stat().st_size > 5000
    assert "precision" in res.stdout
    cal = rep["calibration"]  # the answers' probabilities against how often they are right
    assert sum(b["n"] for b in cal["bins"]) == 30
    assert cal["accuracy"] == pytest.approx(rep["accuracy"], abs=1e-5)
    assert 0.0 <= cal["ece"] <= cal["mce"] <= 1.0
    assert "calibration: ECE" in res.stdout


def test_eval_classifier_needs_one_source(tmp_path):
    res = runner.invoke(load_commands(), ["eval", "classifier", "--report",
                                          str(tmp_path / "r.json")])
    assert res.exit_code == 1
    assert "exactly one" in res.stderr


def test_eval_classifier_follows_symlinked_class_folders(astronaut_path, tmp_path):
    """DIR/with_mask and DIR/without_mask as symlinks to folders (a new user's layout) are
    read, and a link back to an ancestor does not loop."""
    from maskface.io.sources import expand_sources
    from maskface.train.data import read_class_folders

    store = tmp_path / "store"
    for name, asset in (("masked_photos", "astronaut_masked.jpg"),
                        ("bare_photos", "astronaut.jpg")):
        (store / name).mkdir(parents=True)
        for k in range(3):
            (store / name / f"{k}.jpg").write_bytes((astronaut_path.parent / asset).read_bytes())
    (store / "masked_photos" / "loop").symlink_to(store / "masked_photos",
                                                target_is_directory=True)
    data = tmp_path / "eval"
    data.mkdir()
    (data / "with_mask").symlink_to(store / "masked_photos", target_is_directory=True)
    (data / "without_mask").symlink_to(store / "bare_photos", target_is_directory=True)
    # a link from a class up to the dataset: its other classes are not this class's photos
    (store / "bare_photos" / "up").symlink_to(data, target_is_directory=True)

    samples = read_class_folders(data, ("with_mask", "without_mask"))
    assert sorted(s.label for s in samples) == ["with_mask"] * 3 + ["without_mask"] * 3
    assert len(expand_sources([str(data)])) == 6  # the loop adds no file twice
    report = tmp_path / "cls.json"
    res = runner.invoke(load_commands(), ["eval", "classifier", str(data), "--report",
                                          str(report)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rep = json.loads(report.read_text())
    assert rep["n"] == 6 and rep["n_errors"] == 0
    assert "errors" not in rep["plots"]  # nothing to show: no empty sheet


def test_eval_classifier_errors_sheet_shows_the_mistakes(astronaut_path, tmp_path):
    """Mislabelled photos come back as errors, most confident first, on a sheet of the crops
    the model saw."""
    import cv2

    data = tmp_path / "eval"
    for label, asset in (("with_mask", "astronaut.jpg"), ("without_mask", "astronaut.jpg"),
                         ("without_mask", "astronaut_masked.jpg")):
        (data / label).mkdir(parents=True, exist_ok=True)
        (data / label / asset).write_bytes((astronaut_path.parent / asset).read_bytes())
    report = tmp_path / "out" / "cls.json"
    res = runner.invoke(load_commands(), ["eval", "classifier", str(data), "--report",
                                          str(report)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rep = json.loads(report.read_text())
    assert rep["n"] == 3 and rep["n_errors"] == 2
    assert {(e["true"], e["predicted"]) for e in rep["errors"]} == {
        ("with_mask", "without_mask"), ("without_mask", "with_mask")}
    sheet = cv2.imread(rep["plots"]["errors"])
    assert rep["plots"]["errors"] == str(tmp_path / "out" / "cls_errors.png")
    # two 128-px cells side by side, each over three caption lines
    assert sheet.shape[1] == 2 * (128 + 6) + 6
    assert sheet.shape[0] == 128 + 3 * 18 + 2 * 6
    assert "errors.png" in res.stdout


def test_errors_listed_most_confident_first():
    from maskface.eval.classifier import _errors_by_confidence

    labels = ["with_mask", "without_mask"]
    probs = np.array([[0.6, 0.4], [0.1, 0.9], [0.95, 0.05], [0.3, 0.7]])
    truth = ["without_mask", "without_mask", "without_mask", "with_mask"]
    assert _errors_by_confidence(probs, truth, labels).tolist() == [2, 3, 0]


def _strict(text: str):
    """Parse as JSON parsers outside Python do: NaN / Infinity are not JSON."""
    def refuse(word):
        raise ValueError(f"not strict JSON: {word}")

    return json.loads(text, parse_constant=refuse)


def test_eval_classifier_on_one_class_says_no_auc(tmp_path):
    """A folder of masked faces only has no ROC: the report says null (it used to write the
    bare word NaN, which browsers and jq refuse) and the summary n/a."""
    import shutil

    from maskface.cli.detect import demo_image

    (tmp_path / "data" / "with_mask").mkdir(parents=True)
    shutil.copy(demo_image("astronaut_masked.jpg"), tmp_path / "data" / "with_mask" / "a.jpg")
    report = tmp_path / "r.json"
    res = runner.invoke(load_commands(), ["eval", "classifier", str(tmp_path / "data"),
                                          "--report", str(report)])
    assert res.exit_code == 0, res.output
    assert "ROC AUC n/a" in res.output
    rep = _strict(report.read_text())
    assert rep["roc_auc"] is None and rep["n"] == 1
    assert rep["accuracy_ci95"] == [rep["accuracy"]] * 2  # one crop: nothing to resample


@pytest.mark.data
def test_eval_classifier_cuts_scene_boxes_tight_as_crop_datasets_do(data_dir, tmp_path):
    """``--crop tight`` cuts each true box exactly (a crop dataset's framing) instead of the
    pipeline's 1.15x crop with context; ``--min-face`` leaves out the smallest boxes."""
    from maskface.eval.classifier import scene_crops
    from maskface.eval.scenes import load_scenes
    from maskface.geometry import crop_padded

    ilc = data_dir / "scenes" / "ilc2021"
    if not ilc.is_dir():
        pytest.skip(f"{ilc} not found")
    scenes = load_scenes(ilc, "val")[:6]
    small = tmp_path / "ilc"
    for sub in ("images", "annotations", "splits"):
        (small / sub).mkdir(parents=True)
    for sc in scenes:
        (small / "images" / sc.path.name).symlink_to(sc.path)
        xml = ilc / "annotations" / f"{sc.path.stem}.xml"
        (small / "annotations" / xml.name).symlink_to(xml)
    (small / "splits" / "val.txt").write_text("\n".join(sc.path.stem for sc in scenes) + "\n")
    clf = MaskClassifier()
    sides = np.concatenate([np.minimum(sc.boxes[:, 2] - sc.boxes[:, 0],
                                       sc.boxes[:, 3] - sc.boxes[:, 1]) for sc in scenes])
    tight = scene_crops(small, clf, progress=False, split="val", tight=True, min_face=24)
    usual = scene_crops(small, clf, progress=False, split="val", min_face=24)
    assert len(tight.labels) == len(usual.labels) == int((sides >= 24).sum()) > 0
    assert tight.names == usual.names
    k = int(tight.names[0].rsplit("#", 1)[1])
    box = scenes[0].boxes[k]
    want = whole_image_crop(crop_padded(load_image(scenes[0].path), box), clf.input_size)
    assert np.array_equal(tight.crops[0], want)
    assert not np.array_equal(tight.crops[0], usual.crops[0])
    report = tmp_path / "tight.json"
    res = runner.invoke(load_commands(), ["eval", "classifier", "--scenes", str(small),
                                          "--split", "val", "--crop", "tight", "--min-face",
                                          "24", "--report", str(report)])
    assert res.exit_code == 0, res.output
    rep = json.loads(report.read_text())
    assert rep["n"] == len(tight.labels) and rep["crop"].startswith("tight")
    res = runner.invoke(load_commands(), ["eval", "classifier", str(small), "--crop", "tight",
                                          "--report", str(report)])
    assert res.exit_code == 1 and "--scenes" in res.stderr
    res = runner.invoke(load_commands(), ["eval", "classifier", "--scenes", str(small),
                                          "--split", "val", "--min-face", "5000", "--report",
                                          str(report)])
    assert res.exit_code == 1 and "5000 px" in res.stderr

"""``maskface eval compare``: paired bootstrap of two pipeline runs on the same faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from maskface.cli import load_commands
from maskface.errors import InputError
from maskface.eval.compare import compare_reports, run_intervals
from maskface.eval.pipeline import ImageEval, face_records, summarise
from maskface.eval.scenes import SceneImage


def _image(name, boxes, labels, pred_boxes, pred_labels, p_masked):
    scene = SceneImage(Path(name), np.asarray(boxes, float).reshape(-1, 4), tuple(labels))
    pred = np.asarray(pred_boxes, float).reshape(-1, 4)
    return ImageEval(scene, pred, np.ones(len(pred)), list(pred_labels),
                     np.asarray(p_masked, float))


def _report(evals):
    rep = summarise(evals, classified=True)
    rep.update(face_records(evals))
    return rep


def _two_images(second_label="with_mask"):
    """The summary test's scenes: 5 faces, 4 found, one false detection."""
    e1 = _image("a.jpg", [[0, 0, 20, 20], [50, 0, 90, 40], [200, 0, 300, 100]],
                ["with_mask", "with_mask", "without_mask"],
                [[0, 0, 20, 20], [50, 0, 90, 40], [200, 0, 300, 100], [400, 400, 420, 420]],
                ["with_mask", "without_mask", "without_mask", "without_mask"],
                [0.9, 0.3, 0.2, 0.1])
    e2 = _image("b.jpg", [[0, 0, 50, 50], [100, 0, 150, 50]], ["without_mask", "without_mask"],
                [[100, 0, 150, 50]], [second_label], [0.6])
    return [e1, e2]


def test_records_give_back_the_summary_figures():
    rep = _report(_two_images())
    assert [f["found"] for f in rep["per_face"]] == [True, True, True, False, True]
    assert rep["per_face"][1]["predicted"] == "without_mask" and rep["per_face"][3]["predicted"] \
        is None
    assert rep["false_detections_per_image"] == {"a.jpg": 1, "b.jpg": 0}
    m = compare_reports(rep, rep, resamples=200)["metrics"]
    assert m["recall"]["A"] == rep["detection"]["recall"] == 0.8
    assert m["tnr"]["A"] == rep["tnr"] and m["fnr"]["A"] == rep["fnr"]
    per_class = rep["classification"]["found_faces"]["per_class"]
    assert m["f1_with_mask"]["A"] == per_class["with_mask"]["f1"]
    assert m["f1_without_mask"]["A"] == per_class["without_mask"]["f1"]
    assert m["accuracy_on_found"]["A"] == rep["classification"]["accuracy_on_identified"]
    assert m["false_detections_per_image"]["A"] == 0.5
    # a run against itself: nothing differs in any resample
    assert all(r["difference"] == 0 and r["ci95"] == [0, 0] and not r["significant"]
               for r in m.values())


def test_a_run_without_a_classifier_has_no_mask_figures_to_compare():
    """Its undefined figures (null in its report) were read as 0, and B's lead over them was
    'significant'."""
    import copy

    b = _report(_two_images())
    a = copy.deepcopy(b)
    a["classifier"] = None
    for f in a["per_face"]:
        f["predicted"] = f["p_with_mask"] = None
    result = compare_reports(a, b, resamples=200)
    assert result["unclassified"] == ["A"]
    assert set(result["metrics"]) == {"recall", "recall_iou_0.3", "recall_small (< 32 px)",
                                      "false_detections_per_image"}
    from maskface.cli.pipeline_eval import format_comparison

    assert "A ran without a classifier" in format_comparison(result, Path("a"), Path("b"))


def test_difference_is_b_minus_a():
    a, b = _report(_two_images()), _report(_two_images("without_mask"))
    m = compare_reports(a, b, resamples=200)["metrics"]
    # b calls image 2's found unmasked face right: 2 of 3 unmasked faces caught instead of 1
    assert m["tnr"]["A"] == 0.3333 and m["tnr"]["B"] == 0.6667
    assert m["tnr"]["difference"] == 0.3333
    assert m["recall"]["difference"] == 0 and m["accuracy_on_found"]["difference"] == 0.25
    lo, hi = m["tnr"]["ci95"]
    assert 0 <= lo <= 0.3333 <= hi


def test_a_gain_on_every_photo_is_significant_and_one_face_is_not():
    def run(right):
        return _report([_image(f"{k}.jpg", [[0, 0, 60, 60]], ["without_mask"],
                               [[0, 0, 60, 60]], ["without_mask" if r else "with_mask"], [0.5])
                        for k, r in enumerate(right)])

    base = run([k % 2 == 0 for k in range(40)])
    better = run([True] * 40)
    one_more = run([k % 2 == 0 or k == 1 for k in range(40)])
    assert compare_reports(base, better, resamples=500)["metrics"]["tnr"]["significant"]
    assert not compare_reports(base, one_more, resamples=500)["metrics"]["tnr"]["significant"]
    from maskface.cli.pipeline_eval import format_comparison

    said = format_comparison(compare_reports(base, better, resamples=500), Path("a"), Path("b"))
    assert "  *" in said and "* the interval excludes 0" in said


def test_one_run_intervals_hold_its_figures():
    rep = _report([_image(f"{k}.jpg", [[0, 0, 60, 60], [100, 0, 160, 60]],
                          ["without_mask", "with_mask"], [[0, 0, 60, 60]],
                          ["without_mask" if k % 3 else "with_mask"], [0.5])
                   for k in range(30)])
    ci = run_intervals(rep, resamples=500)
    assert rep["detection"]["recall"] == 0.5 and ci["recall"] == [0.5, 0.5]  # 1 of 2 each
    lo, hi = ci["tnr"]
    assert lo < rep["tnr"] < hi and hi - lo > 0.1  # 20 of 30 caught: the split's luck shows
    assert "fnr" in ci and "f1_mask_incorrect" not in ci  # no such face in the truth


def test_reports_on_other_faces_or_without_records_are_refused():
    a = _report(_two_images())
    with pytest.raises(InputError, match="not run on the same faces"):
        compare_reports(a, _report(_two_images()[:1]))
    old = {k: v for k, v in a.items() if k != "per_face"}
    with pytest.raises(InputError, match="no per-face records"):
        compare_reports(a, old)


def _voc_scene(root: Path, astronaut_path: Path) -> Path:
    import cv2

    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    (root / "images" / "astronaut.jpg").symlink_to(astronaut_path)
    cv2.imwrite(str(root / "images" / "blank.png"), np.full((300, 400, 3), 200, np.uint8))
    (root / "annotations" / "astronaut.xml").write_text(
        "<annotation><filename>astronaut.jpg</filename><object><name>without_mask</name>"
        "<bndbox><xmin>176</xmin><ymin>60</ymin><xmax>272</xmax><ymax>182</ymax></bndbox>"
        "</object></annotation>")
    return root


def test_cli_compares_two_detectors_on_the_same_scenes(tmp_path, astronaut_path):
    scenes = _voc_scene(tmp_path / "scenes", astronaut_path)
    runner = CliRunner()
    for det in ("yunet", "retinaface"):
        res = runner.invoke(load_commands(), [
            "eval", "pipeline", "--scenes", str(scenes), "--report", str(tmp_path / f"{det}.json"),
            "--detector", det, "--examples", "0"])
        assert res.exit_code == 0, res.output
        # no masked face in the truth: no FNR to give (this summary line used to crash)
        assert "FNR (masked flagged) n/a" in res.output
    out = tmp_path / "cmp" / "c.json"
    res = runner.invoke(load_commands(), [
        "eval", "compare", str(tmp_path / "yunet.json"), str(tmp_path / "retinaface.json"),
        "--report", str(out), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert (rep["images"], rep["faces"]) == (2, 1)
    assert rep["runs"]["A"]["detector"]["name"] == "yunet"
    assert rep["runs"]["B"]["detector"]["name"] == "retinaface"
    assert rep["metrics"]["recall"] == {"A": 1.0, "B": 1.0, "difference": 0.0,
                                        "ci95": [0.0, 0.0], "significant": False}
    assert Path(rep["plots"]["intervals"]).stat().st_size > 5_000
    one = json.loads((tmp_path / "yunet.json").read_text())
    assert one["intervals_95"]["recall"] == [1.0, 1.0]
    assert "recall" in res.output and "95 % interval" in res.output
    # nothing differs here: the legend of a '*' that no row carries must not suggest otherwise
    assert "  *" not in res.output and "excludes 0" not in res.output
    assert "no figure differs beyond what resampling the photos gives" in res.output


def test_cli_bad_reports(tmp_path, astronaut_path):
    scenes = _voc_scene(tmp_path / "scenes", astronaut_path)
    runner = CliRunner()
    for name, extra in (("all", []), ("one", ["--limit", "1"])):
        res = runner.invoke(load_commands(), [
            "eval", "pipeline", "--scenes", str(scenes), "--report", str(tmp_path / f"{name}.json"),
            "--classifier", "none", "--detector", "yunet", "--examples", "0", *extra])
        assert res.exit_code == 0, res.output
    (tmp_path / "junk.json").write_text("not json")
    for a, b, message in (("all.json", "one.json", "not run on the same faces"),
                          ("all.json", "junk.json", "not a JSON report"),
                          ("all.json", "none.json", "no such file")):
        res = runner.invoke(load_commands(), ["eval", "compare", str(tmp_path / a),
                                              str(tmp_path / b), "--report",
                                              str(tmp_path / "c.json")])
        assert res.exit_code == 1 and message in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "c.json").exists()


def _crop_report(answers):
    """An `eval classifier` report's records: ``answers`` maps crop name -> (true, said);
    ``photo.jpg#k`` names are boxes of one scenes photo."""
    from maskface.eval.classifier import LabelledCrops, evaluate_crops

    labels = ("with_mask", "without_mask", "mask_incorrect")

    class Said:
        def predict_proba(self, crops):
            return np.eye(3, dtype=np.float32)[[labels.index(s) for _, s in answers.values()]]

    Said.labels = labels
    data = LabelledCrops(np.zeros((len(answers), 8, 8, 3), np.uint8),
                         [t for t, _ in answers.values()], ["s"] * len(answers),
                         list(answers), [])
    return evaluate_crops(Said(), data)[0]


def test_classifier_reports_are_compared_by_photo():
    """Two classifier runs on the same crops: accuracy, kiosk view and each class's figures,
    the crops of one scenes photo resampled together, a crop file on its own."""
    truth = {"p.jpg#0": "with_mask", "p.jpg#1": "mask_incorrect", "p.jpg#2": "without_mask",
             "q#1.jpg": "mask_incorrect", "r.jpg": "with_mask"}
    a = _crop_report({k: (t, "with_mask") for k, t in truth.items()})
    b = _crop_report({k: (t, t) for k, t in truth.items()})
    assert [c["image"] for c in a["per_crop"]] == ["p.jpg"] * 3 + ["q#1.jpg", "r.jpg"]
    res = compare_reports(a, b, resamples=500)
    assert res["images"] == 3 and res["faces"] == 5
    m = res["metrics"]
    assert (m["accuracy"]["A"], m["accuracy"]["B"]) == (0.4, 1.0)
    # kiosk view: only with_mask passes; A lets the incorrect and bare faces through
    assert (m["kiosk_view_accuracy"]["A"], m["kiosk_view_accuracy"]["B"]) == (0.4, 1.0)
    assert (m["recall_mask_incorrect"]["A"], m["recall_mask_incorrect"]["B"]) == (0.0, 1.0)
    assert m["recall_mask_incorrect"]["significant"]  # wrong on every photo that has one
    same = compare_reports(b, b, resamples=500)["metrics"]
    assert all(r["difference"] == 0 and r["ci95"] == [0, 0] for r in same.values())
    other = _crop_report({**{k: (t, t) for k, t in truth.items()}, "s.jpg": ("with_mask",) * 2})
    with pytest.raises(InputError, match="same crops"):
        compare_reports(a, other)
    with pytest.raises(InputError, match="same kind"):
        compare_reports(a, _report(_two_images()))
    other["model_labels"] = ["with_mask", "without_mask", "mask_incorrect"]
    del other["per_crop"]  # a classifier report from before the records
    with pytest.raises(InputError, match="per-crop records"):
        compare_reports(a, other)

"""Scenes parsers, prediction-to-truth matching and the ``maskface eval pipeline`` command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from maskface.cli import load_commands
from maskface.cli.pipeline_eval import format_summary
from maskface.errors import InputError, ModelError
from maskface.eval.pipeline import ImageEval, match_boxes, summarise
from maskface.eval.scenes import SceneImage, count_faces, detect_layout, load_scenes


def _write_images(root, names, size=(40, 60)):
    import cv2

    (root / "images").mkdir(parents=True)
    for name in names:
        cv2.imwrite(str(root / "images" / name), np.full((*size, 3), 128, np.uint8))


def test_dataroots_csv(tmp_path):
    _write_images(tmp_path, ["2.jpg", "10.jpg", "empty.jpg"])
    (tmp_path / "annotations.csv").write_text(
        "image,label,x,y,w,h\n"
        "10.jpg,with_mask,5,6,10,20\n"
        "2.jpg,without_mask,0,0,4,4\n"
        "10.jpg,without_mask,20,1,3,5\n"
    )
    scenes = load_scenes(tmp_path)
    assert detect_layout(tmp_path) == "dataroots"
    assert [s.name for s in scenes] == ["2.jpg", "10.jpg", "empty.jpg"]  # natural order
    ten = scenes[1]
    np.testing.assert_allclose(ten.boxes, [[5, 6, 15, 26], [20, 1, 23, 6]])
    assert ten.labels == ("with_mask", "without_mask")
    assert len(scenes[2]) == 0 and scenes[2].boxes.shape == (0, 4)
    assert count_faces(scenes) == {"with_mask": 1, "without_mask": 2, "mask_incorrect": 0}


VOC = """<annotation><folder>images</folder><filename>{fn}</filename>
<size><width>60</width><height>40</height><depth>3</depth></size>
<object><name>with_mask</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>11</xmax>
<ymax>22</ymax></bndbox></object>
<object><name>mask_weared_incorrect</name><bndbox><xmin>30</xmin><ymin>5</ymin>
<xmax>40</xmax><ymax>15</ymax></bndbox></object>
</annotation>"""


def test_voc_xml(tmp_path):
    _write_images(tmp_path, ["maksssksksss0.png", "b.png"])
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "maksssksksss0.xml").write_text(VOC.format(fn="maksssksksss0.png"))
    # a wrong <filename> falls back to the image with the XML's stem
    (tmp_path / "annotations" / "b.xml").write_text(
        VOC.format(fn="elsewhere.png").replace("mask_weared_incorrect", "without_mask"))
    scenes = {s.name: s for s in load_scenes(tmp_path)}
    assert detect_layout(tmp_path) == "voc"
    a = scenes["maksssksksss0.png"]
    np.testing.assert_allclose(a.boxes, [[1, 2, 11, 22], [30, 5, 40, 15]])
    assert a.labels == ("with_mask", "mask_incorrect")
    assert scenes["b.png"].labels == ("with_mask", "without_mask")
    # a box wholly outside its declared 60x40 image was counted as a face the detector missed
    (tmp_path / "annotations" / "b.xml").write_text(
        VOC.format(fn="b.png").replace("<xmin>30</xmin>", "<xmin>70</xmin>").replace(
            "<xmax>40</xmax>", "<xmax>90</xmax>"))
    with pytest.raises(InputError, match="lies outside its 60x40 image"):
        load_scenes(tmp_path)


@pytest.mark.parametrize("csv_text, message", [
    ("image,label,x,y\n", "missing column"),
    ("image,label,x,y,w,h\nnope.jpg,with_mask,1,1,5,5\n", "not found"),
    ("image,label,x,y,w,h\na.jpg,hat,1,1,5,5\n", "unknown label"),
    ("image,label,x,y,w,h\na.jpg,with_mask,1,1,0,5\n", "invalid box"),
    ("image,label,x,y,w,h\na.jpg,with_mask,1,one,5,5\n", "numbers"),
])
def test_dataroots_bad_csv(tmp_path, csv_text, message):
    _write_images(tmp_path, ["a.jpg"])
    (tmp_path / "annotations.csv").write_text(csv_text)
    with pytest.raises(InputError, match=message):
        load_scenes(tmp_path)


def test_bad_layouts(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_scenes(tmp_path / "missing")
    with pytest.raises(InputError, match="images/"):
        load_scenes(tmp_path)
    _write_images(tmp_path, ["a.jpg"])
    with pytest.raises(InputError, match="annotations"):
        load_scenes(tmp_path)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.xml").write_text("<annotation><object>")
    with pytest.raises(InputError, match="not valid XML"):
        load_scenes(tmp_path)


def test_dataroots_real(data_dir):
    scenes = load_scenes(data_dir / "scenes" / "dataroots")
    assert len(scenes) == 273
    assert count_faces(scenes) == {"with_mask": 246, "without_mask": 278, "mask_incorrect": 0}


# --- matching and the report's figures on hand-made boxes ------------------------------------


def test_match_boxes_one_to_one_by_iou():
    truth = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [100, 100, 110, 110]], float)
    pred = np.array([
        [1, 0, 11, 10],     # IoU 0.82 with truth 0
        [0, 0, 10, 9],      # IoU 0.90 with truth 0: wins it, so pred 0 is left over
        [22, 0, 32, 10],    # IoU 0.67 with truth 1
        [100, 100, 104, 104],  # IoU 0.16 with truth 2: too small
    ], float)
    np.testing.assert_array_equal(match_boxes(pred, truth), [1, 2, -1])
    np.testing.assert_array_equal(match_boxes(np.zeros((0, 4)), truth), [-1, -1, -1])
    assert match_boxes(pred, np.zeros((0, 4))).shape == (0,)
    # IoU exactly 0.5 does not match (strictly greater is required)
    np.testing.assert_array_equal(match_boxes(np.array([[0, 0, 10, 10.]]),
                                              np.array([[0, 0, 10, 20.]])), [-1])


def _scene(boxes, labels):
    return SceneImage(Path("x.jpg"), np.asarray(boxes, float).reshape(-1, 4), tuple(labels))


def _eval(scene, boxes, labels, p_masked):
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    return ImageEval(scene, boxes, np.ones(len(boxes)), list(labels),
                     np.asarray(p_masked, float))


def test_summary_table_rates_and_roc():
    # image 1: two masked faces (one 20 px, one 40 px tall), one unmasked 100 px face
    s1 = _scene([[0, 0, 20, 20], [50, 0, 90, 40], [200, 0, 300, 100]],
                ["with_mask", "with_mask", "without_mask"])
    e1 = _eval(s1, [[0, 0, 20, 20], [50, 0, 90, 40], [200, 0, 300, 100], [400, 400, 420, 420]],
               ["with_mask", "without_mask", "without_mask", "without_mask"],
               [0.9, 0.3, 0.2, 0.1])
    # image 2: an unmasked face that is missed, and an unmasked one classified as masked
    s2 = _scene([[0, 0, 50, 50], [100, 0, 150, 50]], ["without_mask", "without_mask"])
    e2 = _eval(s2, [[100, 0, 150, 50]], ["with_mask"], [0.6])
    rep = summarise([e1, e2], classified=True)
    det = rep["detection"]
    assert (rep["faces"], det["found"], det["missed"], rep["false_detections"]) == (5, 4, 1, 1)
    assert det["recall"] == 0.8 and det["precision"] == 0.8
    assert det["recall_by_size"]["small"] == {"faces": 1, "found": 1, "recall": 1.0}
    assert det["recall_by_size"]["medium"]["recall"] == 0.6667  # 2 of 3 (40 and 50 px)
    assert det["recall_by_size"]["large"]["recall"] == 1.0
    table = rep["classification"]["table"]
    assert table["with_mask"] == {"correct": 1, "wrong": 1, "not_identified": 0, "faces": 2}
    assert table["without_mask"] == {"correct": 1, "wrong": 1, "not_identified": 1, "faces": 3}
    assert rep["tnr"] == 0.3333  # 1 of 3 unmasked faces caught (the missed one counts as masked)
    assert rep["fnr"] == 0.5  # 1 of 2 masked faces flagged
    assert rep["classification"]["false_detections_by_predicted_label"] == {"without_mask": 1}
    # faces found: the 20-px one right, the 40- and 50-px ones both wrong, the 100-px one right
    assert rep["classification"]["accuracy_on_identified_by_size"] == {
        "small": {"faces": 1, "right": 1, "accuracy": 1.0},
        "medium": {"faces": 2, "right": 0, "accuracy": 0.0},
        "large": {"faces": 1, "right": 1, "accuracy": 1.0}}
    # ROC scores 1 - P(with_mask): masked 0.1, 0.7; unmasked 0.8, 0.0 (missed), 0.4.
    # Pairs unmasked > masked: 0.8 beats both, 0.4 beats 0.1, 0.0 beats none -> 3 of 6.
    assert rep["roc"]["auc"] == 0.5
    assert rep["roc"]["faces"] == 5


def test_summary_without_classifier():
    s = _scene([[0, 0, 40, 40]], ["with_mask"])
    rep = summarise([_eval(s, [[0, 0, 40, 40]], [None], [np.nan])], classified=False)
    assert rep["detection"]["recall"] == 1.0
    assert rep["tnr"] is None and rep["classification"] is None


def _subset(data_dir, tmp_path, n=10):
    """A scenes folder holding the first ``n`` dataroots images that have unmasked faces plus
    masked ones (symlinked), with their annotation rows."""
    src = data_dir / "scenes" / "dataroots"
    with open(src / "annotations.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_image: dict[str, list[dict]] = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(r)
    chosen = [im for im, rs in by_image.items()
              if {r["label"] for r in rs} == {"with_mask", "without_mask"}][: n // 2]
    chosen += [im for im, rs in by_image.items() if im not in chosen][: n - len(chosen)]
    (tmp_path / "images").mkdir(parents=True)
    for im in chosen:
        (tmp_path / "images" / im).symlink_to(src / "images" / im)
    with open(tmp_path / "annotations.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "label", "x", "y", "w", "h"])
        w.writeheader()
        for im in chosen:
            w.writerows(by_image[im])
    return tmp_path, sum(len(by_image[im]) for im in chosen)


def test_eval_pipeline_cli_on_dataroots(data_dir, tmp_path):
    scenes, n_faces = _subset(data_dir, tmp_path / "scenes")
    try:
        from maskface.classify import MaskClassifier

        MaskClassifier()
        classifier = "default"
    except ModelError:  # the shipped classifier is not in this checkout yet
        classifier = "none"
    report = tmp_path / "out" / "pipe.json"
    res = CliRunner().invoke(load_commands(), [
        "eval", "pipeline", "--scenes", str(scenes), "--report", str(report),
        "--classifier", classifier, "--examples", "4"])
    assert res.exit_code == 0, res.output
    rep = json.loads(report.read_text())
    assert rep["images"] == 10 and rep["faces"] == n_faces
    det = rep["detection"]
    assert det["recall"] >= 0.8 and det["precision"] >= 0.7
    assert det["found"] + det["missed"] == n_faces
    assert rep["false_detections"] == det["predicted"] - det["found"]
    assert sum(v["faces"] for v in det["recall_by_size"].values()) == n_faces
    assert set(rep["faces_by_label"]) == {"with_mask", "without_mask"}
    assert (tmp_path / "out" / "pipe_examples.png").stat().st_size > 10_000
    if classifier != "none":
        assert 0.5 <= rep["tnr"] <= 1 and 0 <= rep["fnr"] <= 0.5
        assert 0.0 <= rep["roc"]["auc"] <= 1.0 and rep["roc"]["faces"] == n_faces
        assert (tmp_path / "out" / "pipe_roc.png").is_file()
        assert (tmp_path / "out" / "pipe_confusion.png").is_file()
        table = rep["classification"]["table"]
        assert sum(t["faces"] for t in table.values()) == n_faces
        found = rep["classification"]["found_faces"]
        assert np.sum(found["confusion_matrix"]) == det["found"]
        cal = rep["classification"]["calibration"]  # each found face's answer and probability
        assert sum(b["n"] for b in cal["bins"]) == det["found"]
        assert cal["accuracy"] == pytest.approx(
            np.trace(found["confusion_matrix"]) / det["found"], abs=1e-5)
        assert (tmp_path / "out" / "pipe_reliability.png").is_file()
        assert "calibration on faces found: ECE" in res.output
    n_wrong = det["missed"] + (0 if classifier == "none"
                               else det["found"] - int(np.trace(found["confusion_matrix"])))
    assert ("errors" in rep["plots"]) == (n_wrong > 0)
    assert rep["detector"]["small_face_zoom"] == 3.0  # the default's crowd zoom, reported
    res = CliRunner().invoke(load_commands(), [
        "eval", "pipeline", "--scenes", str(scenes), "--report", str(report),
        "--classifier", "none", "--examples", "0", "--no-zoom"])
    assert res.exit_code == 0, res.output
    assert json.loads(report.read_text())["detector"]["small_face_zoom"] is None


def test_errors_sheet_cuts_out_the_faces_got_wrong(astronaut_path, tmp_path):
    """Wrongly labelled faces first, then missed ones (loose boxes named), largest first."""
    import cv2

    from maskface.eval.pipeline import face_errors, plot_errors

    truth = [[150, 60, 330, 280], [10, 10, 40, 50], [10, 300, 90, 400], [400, 300, 460, 380]]
    scene = SceneImage(astronaut_path, np.array(truth, float),
                       ("with_mask", "without_mask", "without_mask", "with_mask"))
    pred = np.array([[150, 60, 330, 280], [400, 330, 460, 420]], float)  # 2nd: IoU ~0.45
    e = ImageEval(scene, pred, np.ones(2), ["without_mask", "with_mask"], np.zeros(2))
    assert e.match.tolist() == [0, -1, -1, -1] and e.loose_match[3] == 1
    assert [(f.kind, f.index) for f in face_errors([e])] == [
        ("wrong", 0), ("missed", 2), ("loose box", 3), ("missed", 1)]
    assert [f.index for f in face_errors([e], limit=2)] == [0, 2]
    path = plot_errors([e], tmp_path / "errors.png")
    sheet = cv2.imread(str(path))
    # four cells in one row: the wrong label, then the missed faces by height (100, 80, 40 px)
    assert sheet.shape == (128 + 3 * 18 + 12, 4 * (128 + 6) + 6, 3)
    assert sheet[6:134, 6:134].std() > 20  # the astronaut's face, not a blank cell
    right = ImageEval(scene, np.array(truth, float), np.ones(4), list(scene.labels),
                      np.zeros(4))
    assert plot_errors([right], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
    blind = ImageEval(scene, np.zeros((0, 4)), np.zeros(0), [], np.zeros(0))  # found nothing
    assert [f.kind for f in face_errors([blind])] == ["missed"] * 4
    assert plot_errors([blind], tmp_path / "blind.png") is not None


def test_eval_pipeline_cli_bad_scenes(tmp_path):
    res = CliRunner().invoke(load_commands(), [
        "eval", "pipeline", "--scenes", str(tmp_path), "--report", str(tmp_path / "r.json")])
    assert res.exit_code == 1
    assert "error:" in res.output and "images/" in res.output


def test_eval_pipeline_cli_voc_astronaut(tmp_path, astronaut_path):
    """End to end on a VOC-layout scene set: the astronaut (face hand-labelled) and an empty
    image, so the one face must be found and nothing else."""
    import cv2

    (tmp_path / "scenes" / "images").mkdir(parents=True)
    (tmp_path / "scenes" / "annotations").mkdir()
    (tmp_path / "scenes" / "images" / "astronaut.jpg").symlink_to(astronaut_path)
    cv2.imwrite(str(tmp_path / "scenes" / "images" / "blank.png"),
                np.full((300, 400, 3), 200, np.uint8))
    (tmp_path / "scenes" / "annotations" / "astronaut.xml").write_text(
        "<annotation><filename>astronaut.jpg</filename><object><name>without_mask</name>"
        "<bndbox><xmin>176</xmin><ymin>60</ymin><xmax>272</xmax><ymax>182</ymax></bndbox>"
        "</object></annotation>")
    report = tmp_path / "r.json"
    res = CliRunner().invoke(load_commands(), [
        "eval", "pipeline", "--scenes", str(tmp_path / "scenes"), "--report", str(report),
        "--classifier", "none", "--detector", "yunet", "--examples", "2"])
    assert res.exit_code == 0, res.output
    assert "\r" not in res.stderr  # not a terminal: no bar, whole lines only
    rep = json.loads(report.read_text())
    assert rep["layout"] == "voc" and rep["images"] == 2
    assert rep["detection"]["recall"] == 1.0 and rep["false_detections"] == 0
    assert rep["detection"]["recall_by_size"] == {"large": {"faces": 1, "found": 1,
                                                            "recall": 1.0}}
    assert rep["detector"]["name"] == "yunet"


def test_three_class_found_faces_and_loose_iou():
    """The found-faces confusion covers mask_incorrect; a box overlapping its true face by
    IoU 0.4 counts at IoU > 0.3 only."""
    s = _scene([[0, 0, 40, 40], [100, 0, 140, 40], [200, 0, 240, 40], [300, 0, 400, 100]],
               ["mask_incorrect", "mask_incorrect", "with_mask", "without_mask"])
    # the last prediction covers 40 % of the last true box (IoU 0.4)
    e = _eval(s, [[0, 0, 40, 40], [100, 0, 140, 40], [200, 0, 240, 40], [300, 0, 340, 100]],
              ["mask_incorrect", "with_mask", "mask_incorrect", "without_mask"],
              [0.1, 0.8, 0.3, 0.0])
    rep = summarise([e], classified=True)
    det = rep["detection"]
    assert det["found"] == 3 and det["recall_iou_0.3"] == 1.0
    assert det["recall_by_size_iou_0.3"]["large"] == {"faces": 1, "found": 1, "recall": 1.0}
    assert det["recall_by_size"]["large"]["recall"] == 0.0
    assert det["recall_by_label"]["without_mask"]["recall"] == 0.0
    assert det["recall_by_label_iou_0.3"]["without_mask"] == {"faces": 1, "found": 1,
                                                              "recall": 1.0}
    assert "recall by class: with_mask 1.000, without_mask 0.000, mask_incorrect 1.000 " \
        "(IoU > 0.3: with_mask 1.000, without_mask 1.000, mask_incorrect 1.000)" in \
        format_summary({**rep, "timing": {"per_image_mean_ms": 1.0}})
    json.dumps(rep)
    ff = rep["classification"]["found_faces"]
    assert ff["labels"] == ["with_mask", "mask_incorrect"]
    assert ff["confusion_matrix"] == [[0, 1], [1, 1]]
    assert ff["per_class"]["mask_incorrect"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5,
                                                 "support": 2}
    assert rep["fnr"] == 1.0  # the one masked face was called mask_incorrect: flagged


def test_two_class_truth_gets_a_masked_view_beside_the_kiosk_figures():
    """On with/without truth a mask_incorrect answer is flagged for TNR/FNR (the kiosk refuses
    it) and counted as masked in ``masked_view``; three-class truth gets no masked view."""
    s = _scene([[0, 0, 40, 40], [100, 0, 140, 40], [200, 0, 240, 40], [300, 0, 340, 40]],
               ["with_mask", "with_mask", "without_mask", "without_mask"])
    e = _eval(s, s.boxes, ["mask_incorrect", "with_mask", "mask_incorrect", "without_mask"],
              [0.6, 0.9, 0.6, 0.1])
    rep = summarise([e], classified=True)
    assert (rep["fnr"], rep["tnr"]) == (0.5, 1.0)
    assert (rep["masked_view"]["fnr"], rep["masked_view"]["tnr"]) == (0.0, 0.5)
    three = _scene([[0, 0, 40, 40]], ["mask_incorrect"])
    rep3 = summarise([_eval(three, three.boxes, ["mask_incorrect"], [0.5])], classified=True)
    assert "masked_view" not in rep3


def test_scene_splits_and_training_crops(tmp_path, astronaut_path):
    """splits/<split>.txt selects images; training crops keep the dataset's split, skip tiny
    faces and are cut with the inference crop's framing."""
    import cv2

    from maskface.classify.crop import face_crop, whole_image_crop
    from maskface.io import load_image
    from maskface.train.data import read_scene_crops

    root = tmp_path / "scenes"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    (root / "splits").mkdir()
    (root / "images" / "a.jpg").symlink_to(astronaut_path)
    cv2.imwrite(str(root / "images" / "b.png"), np.full((300, 400, 3), 200, np.uint8))
    obj = ("<object><name>{}</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax>"
           "<ymax>{}</ymax></bndbox></object>")
    (root / "annotations" / "a.xml").write_text(
        "<annotation>" + obj.format("without_mask", 176, 60, 272, 182)
        + obj.format("mask_weared_incorrect", 10, 10, 16, 16) + "</annotation>")
    (root / "annotations" / "b.xml").write_text(
        "<annotation>" + obj.format("with_mask", 10, 10, 60, 60) + "</annotation>")
    (root / "splits" / "train.txt").write_text("a\n")
    (root / "splits" / "test.txt").write_text("b\n")
    assert [s.name for s in load_scenes(root, "test")] == ["b.png"]
    with pytest.raises(InputError, match="no split 'val'"):
        load_scenes(root, "val")
    classes = ("with_mask", "without_mask", "mask_incorrect")
    samples, crops = read_scene_crops(root, classes, cap=192)
    assert [(s.label, s.split, s.source) for s in samples] == [
        ("without_mask", "train", "scenes"), ("with_mask", "test", "scenes")]  # 6-px face left out
    img = load_image(astronaut_path)
    want = face_crop(img, np.array([176, 60, 272, 182], float), 96)
    got = whole_image_crop(crops[samples[0].path], 96)
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 3


def test_eval_pipeline_cli_with_one_class_only(tmp_path, astronaut_path):
    """Truth without a masked face has no FNR: the summary says n/a (it used to crash)."""
    import cv2

    (tmp_path / "scenes" / "images").mkdir(parents=True)
    (tmp_path / "scenes" / "annotations").mkdir()
    cv2.imwrite(str(tmp_path / "scenes" / "images" / "a.jpg"), cv2.imread(str(astronaut_path)))
    (tmp_path / "scenes" / "annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><object><name>without_mask</name>"
        "<bndbox><xmin>176</xmin><ymin>60</ymin><xmax>272</xmax><ymax>182</ymax></bndbox>"
        "</object></annotation>")
    res = CliRunner().invoke(load_commands(), [
        "eval", "pipeline", "--scenes", str(tmp_path / "scenes"), "--report",
        str(tmp_path / "r.json"), "--detector", "yunet", "--examples", "0"])
    assert res.exit_code == 0, res.output
    assert "FNR (masked flagged) n/a" in res.output
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["fnr"] is None and rep["tnr"] == 1.0  # the bare astronaut is caught

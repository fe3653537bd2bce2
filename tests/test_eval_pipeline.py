"""Scenes parsers, prediction-to-truth matching and the ``maskface eval pipeline`` command."""

from __future__ import annotations

import numpy as np
import pytest

from maskface.errors import InputError
from maskface.eval.scenes import count_faces, detect_layout, load_scenes


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

"""Result serialisation and drawing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskface.draw import GREEN, RED, annotate, label_for
from maskface.errors import InputError
from maskface.results import Face, Identity, MaskPrediction, Result


def _face(box, label="with_mask", p=0.98):
    x1, y1, x2, y2 = box
    lm = np.array([[x1 + 5, y1 + 5]] * 5, dtype=np.float32)
    return Face(box=np.array(box, np.float32), score=0.9, landmarks=lm,
                mask=MaskPrediction(label, p, {label: p}))


def test_labels_text_and_colour():
    assert label_for(_face([0, 0, 10, 10])) == ("Mask 98%", GREEN)
    assert label_for(_face([0, 0, 10, 10], "without_mask", 0.97)) == ("No mask 97%", RED)
    f = _face([0, 0, 10, 10])
    f.identity = Identity(3, "Ada", 0.71)
    assert label_for(f)[0] == "Ada | Mask 98%"
    f.identity = Identity(None, None, 0.2)
    assert label_for(f)[0].startswith("Unknown")


def test_names_are_drawn_in_letters_the_font_has():
    """OpenCV's fonts draw one "?" per UTF-8 byte of a non-ASCII letter: "Jos?? Garc??a"."""
    f = _face([0, 0, 10, 10])
    for name, drawn in (("José García", "Jose Garcia"), ("Łukasz Żółć", "Lukasz Zolc"),
                        ("Søren Straße", "Soren Strasse"), ("李 (Bruce)", "? (Bruce)"),
                        ("Иван Петров", "#7")):
        f.identity = Identity(7, name, 0.71)
        assert label_for(f)[0] == f"{drawn} | Mask 98%", name
    img = annotate(np.zeros((60, 200, 3), np.uint8), [f])  # draws without error
    assert img.any()


def test_landmarks_drawn_on_large_faces_only():
    """In a crowd the five dots would cover a 20-px face: it keeps its box only."""
    def dots(box):
        f = _face(box)
        x1, y1 = box[:2]
        f.landmarks = np.array([[x1 + 8, y1 + 8], [x1 + 14, y1 + 8], [x1 + 11, y1 + 12],
                                [x1 + 8, y1 + 16], [x1 + 14, y1 + 16]], np.float32)
        out = annotate(np.zeros((400, 400, 3), np.uint8), [f])
        return int(np.all(out == (255, 255, 0), axis=2).sum())

    assert dots([200, 200, 220, 220]) == 0
    assert dots([100, 100, 200, 200]) > 5


def test_label_stays_inside_image_for_face_at_top_right_corner():
    img = np.zeros((200, 300, 3), np.uint8)
    out = annotate(img, [_face([270, 0, 299, 25], "without_mask")])
    assert out.shape == img.shape and not np.array_equal(out, img)
    # The label background (red) is drawn inside the image, left of the corner face.
    red = np.all(out == RED, axis=2)
    ys, xs = np.nonzero(red)
    assert len(xs) > 50 and xs.min() < 270 and ys.min() >= 0
    assert img.sum() == 0  # the input is untouched


def test_neighbours_labels_do_not_cover_each_other_or_faces():
    """Two faces side by side at one height, as in a crowd: the second label moves below its
    face instead of over the first label; a label with no free place is left out; a lone face
    keeps its label above the box."""
    from maskface.draw import label_rects

    shape = (300, 400, 3)
    boxes = [np.array([100, 100, 140, 150]), np.array([145, 100, 185, 150])]
    a, b = label_rects(shape, ["No mask 97%", "Mask incorrect 64%"], boxes)
    assert a[3] <= 100  # above the first face
    assert b[1] > 150  # below the second face
    for r in (a, b):
        assert 0 <= r[0] <= r[2] <= 400 and 0 <= r[1] <= r[3] <= 300
        assert sum(r[0] < f[2] and f[0] < r[2] and r[1] < f[3] and f[1] < r[3]
                   for f in boxes) <= 1  # covers no other face
    assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    # a small face hemmed in above, below and beside: no label rather than one over a face
    crowd = [np.array(b) for b in ([120, 160, 140, 180], [110, 100, 150, 155],
                                   [110, 185, 150, 230], [150, 160, 180, 200])]
    assert label_rects(shape, ["No mask 97%"] * 4, crowd)[0] is None
    assert label_rects(shape, ["No mask 97%"], boxes[:1])[0] == a


def test_result_json_roundtrip():
    img = np.zeros((50, 80, 3), np.uint8)
    res = Result([_face([1, 2, 30, 40])], img, "x.jpg", {"total": 1.234})
    d = json.loads(res.to_json())
    assert d["width"] == 80 and d["height"] == 50 and d["source"] == "x.jpg"
    assert d["faces"][0]["box"] == [1.0, 2.0, 30.0, 40.0]
    assert d["faces"][0]["mask"]["label"] == "with_mask"
    assert d["faces"][0]["identity"] is None


def test_result_json_is_strict_with_numpy_figures():
    img = np.zeros((50, 80, 3), np.uint8)
    face = _face([1, 2, 30, 40])
    face.identity = Identity(3, "ann", np.float32(0.61), np.float32(0.4), "unmasked-unmasked")
    d = json.loads(Result([face], img, "x.jpg", {"total": float("nan")}).to_json())
    assert d["faces"][0]["identity"]["threshold"] == 0.4
    assert d["timings_ms"]["total"] is None


def test_save_refuses_what_cannot_be_an_image_file_in_one_line(tmp_path):
    res = Result([_face([1, 2, 30, 40])], np.zeros((50, 80, 3), np.uint8), "x.jpg")
    assert res.save(tmp_path / "new" / "a.png").is_file()
    (tmp_path / "file").write_text("x")
    for bad, fragment in [(tmp_path / "noext", "no suffix"), (tmp_path / "a.xyz", ".xyz"),
                          (tmp_path, "is a folder"), (tmp_path / "file" / "a.jpg", "folder")]:
        with pytest.raises(InputError, match=fragment) as err:
            res.save(bad)
        assert "\n" not in str(err.value)

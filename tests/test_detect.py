"""Detectors on the astronaut photo, coordinate mapping through resizing, flipping and tiling,
and box voting."""

from __future__ import annotations

import numpy as np
import pytest

from maskface.detect import DETECTORS, Detections, create_detector
from maskface.detect.multiscale import box_vote, tile_origins, unflip
from maskface.errors import InputError
from maskface.geometry import iou_matrix


@pytest.fixture(scope="module")
def detectors():
    return {name: create_detector(name) for name in DETECTORS}


@pytest.fixture(scope="module")
def reference(astronaut) -> np.ndarray:
    """The face box of the default detector on the astronaut photo."""
    det = create_detector().detect(astronaut)
    assert len(det) == 1
    return det.boxes[0]


def _check_landmarks(box: np.ndarray, lms: np.ndarray) -> None:
    r_eye, l_eye, nose, r_mouth, l_mouth = lms
    x1, y1, x2, y2 = box
    assert ((lms[:, 0] > x1) & (lms[:, 0] < x2) & (lms[:, 1] > y1) & (lms[:, 1] < y2)).all()
    assert r_eye[0] < l_eye[0] and r_mouth[0] < l_mouth[0]  # image-left point first
    assert max(r_eye[1], l_eye[1]) < nose[1] < min(r_mouth[1], l_mouth[1])
    assert r_eye[0] < nose[0] < l_eye[0]


@pytest.mark.parametrize("name", DETECTORS)
def test_finds_the_astronaut(detectors, astronaut, reference, name):
    det = detectors[name].detect(astronaut)
    assert len(det) >= 1
    best = int(np.argmax(det.scores))
    # every detector agrees with the default one on where the face is
    assert iou_matrix(det.boxes[best], reference)[0, 0] > 0.7
    _check_landmarks(det.boxes[best], det.landmarks[best])
    if name != "mtcnn":  # MTCNN also scores the mission patch on the suit (a known weakness)
        assert len(det) == 1
    assert det.boxes.dtype == np.float32 and det.landmarks.shape == (len(det), 5, 2)


@pytest.mark.parametrize("name", ["yunet", "retinaface"])
def test_detect_at_maps_back_to_input_pixels(detectors, astronaut, name):
    d = detectors[name]
    native = d.detect_at(astronaut, 1.0)
    up = d.detect_at(astronaut, 1.7)  # not a round factor: rounding of the resize matters
    down = d.detect_at(astronaut, 0.6)
    for other in (up, down):
        assert iou_matrix(other.boxes[:1], native.boxes[:1])[0, 0] > 0.85
        assert np.abs(other.landmarks[0] - native.landmarks[0]).max() < 6


@pytest.mark.parametrize("name", ["yunet", "retinaface"])
def test_flip_round_trip(detectors, astronaut, name):
    d = detectors[name]
    native = d.detect_at(astronaut, 1.0)
    mirrored = unflip(d.detect_at(np.ascontiguousarray(astronaut[:, ::-1]), 1.0),
                      astronaut.shape[1])
    assert iou_matrix(mirrored.boxes[:1], native.boxes[:1])[0, 0] > 0.85
    assert np.abs(mirrored.landmarks[0] - native.landmarks[0]).max() < 6
    _check_landmarks(mirrored.boxes[0], mirrored.landmarks[0])


@pytest.mark.parametrize("flip", [False, True])
def test_multiscale_and_flip_keep_one_face(astronaut, reference, flip):
    det = create_detector("retinaface", scales=(0.625, 1.0), flip=flip).detect(astronaut)
    assert len(det) == 1
    assert iou_matrix(det.boxes, reference)[0, 0] > 0.85
    _check_landmarks(det.boxes[0], det.landmarks[0])


def test_tiles_find_a_small_face_in_a_big_canvas(astronaut, reference):
    """A 4000x3000 canvas with the astronaut pasted in: the whole-image pass at 640 px shrinks
    the face to ~20 px, the tiled pass finds it at full size and maps it back."""
    canvas = np.full((3000, 4000, 3), 90, np.uint8)
    # 640-px tiles with 25% overlap start every 480 px in x and 472 px in y: the tiles at
    # x=1920 and y=1416 cut the face (x 2500-2593, y 1380-1504), their neighbours hold it whole
    x0, y0 = 2322, 1324
    h, w = astronaut.shape[:2]
    canvas[y0 : y0 + h, x0 : x0 + w] = astronaut
    expected = reference + np.array([x0, y0, x0, y0])
    d = create_detector("retinaface", input_size=640, tile=True)
    tiled = d.detect_tiled(canvas)
    assert len(tiled) == 1  # the face cut by tile borders is not reported twice
    assert iou_matrix(tiled.boxes, expected)[0, 0] > 0.85
    full = d.detect(canvas)
    assert len(full) == 1 and iou_matrix(full.boxes, expected)[0, 0] > 0.85
    _check_landmarks(full.boxes[0], full.landmarks[0])


def test_tile_origins_cover_with_overlap():
    for length, tile in [(100, 640), (640, 640), (1000, 640), (4000, 640), (3001, 1024)]:
        starts = tile_origins(length, tile, 0.25)
        assert starts[0] == 0 and min(length, starts[-1] + tile) == length
        gaps = np.diff(starts)
        assert (gaps <= tile * 0.75 + 1).all() and (gaps > 0).all()


def _det(boxes, scores):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    lms = np.repeat(boxes[:, None, :2], 5, axis=1)
    return Detections(boxes, np.asarray(scores, np.float32), lms)


def test_box_vote_mean_and_max():
    a = _det([[0, 0, 10, 10], [50, 50, 60, 60]], [0.8, 0.6])
    b = _det([[2, 0, 12, 10]], [0.4])
    mean = box_vote([a, b])
    # the overlapping pair fuses into one box, weighted 0.8:0.4, score (0.8+0.4)/2
    assert len(mean) == 2
    np.testing.assert_allclose(mean.boxes[0], [2 / 3, 0, 10 + 2 / 3, 10], atol=1e-5)
    np.testing.assert_allclose(mean.scores, [0.6, 0.3], atol=1e-6)
    mx = box_vote([a, b], mode="max")
    np.testing.assert_allclose(mx.scores, [0.8, 0.6], atol=1e-6)
    assert len(box_vote([Detections.empty(), Detections.empty()])) == 0


def test_unknown_detector_and_bad_size():
    with pytest.raises(InputError, match="unknown detector"):
        create_detector("haar")
    with pytest.raises(InputError, match="input_size"):
        create_detector("retinaface", input_size=8)
    with pytest.raises(InputError, match="scales must be positive"):
        create_detector("yunet", scales=(1.0, 0.0))
    with pytest.raises(InputError, match="no option input_size"):
        create_detector("mtcnn", input_size=640)


def test_pipeline_options_are_checked_when_it_is_built():
    """A wrong option is an InputError naming it at construction, not an AttributeError deep
    in the first analyze()."""
    import maskface

    for kwargs, option in [({"detector": None}, "detector"), ({"detector": 3}, "detector"),
                           ({"liveness": "yes"}, "liveness"), ({"quality": 1}, "quality"),
                           ({"recognizer": "gallery.db"}, "recognizer")]:
        with pytest.raises(InputError, match=f"Pipeline\\({option}="):
            maskface.Pipeline(classifier=None, **kwargs)
    assert {"Pipeline", "analyze", "Result"} <= set(dir(maskface))  # lazy, and still listed


@pytest.mark.parametrize("name", ["retinaface", "yunet"])
def test_close_up_gets_a_pass_at_moderate_upscale(astronaut, reference, name, monkeypatch):
    det = create_detector(name, input_size=1024, max_upscale=2.0)
    factors: list[float] = []
    real = det.detect_at

    def spy(image, scale):
        factors.append(scale)
        return real(image, scale)

    monkeypatch.setattr(det, "detect_at", spy)
    x1, y1, x2, y2 = (int(v) for v in reference)
    pad = (x2 - x1) // 4
    close_up = astronaut[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]
    found = det.detect(close_up)
    # A ~190-px close-up is enlarged more than 5x to 1024 px: a second pass at 2x is added.
    assert factors[0] > 5 and factors[1:] == [2.0]
    assert len(found) == 1
    factors.clear()
    det.detect(astronaut)  # 512 px -> 1024 px is exactly 2x: one pass only
    assert factors == [2.0]


def test_small_face_zoom_only_where_the_photo_is_not_enlarged_already(astronaut, reference,
                                                                      monkeypatch):
    """The crowd profile's zoom pass: on the 512-px astronaut (enlarged exactly 2x) a pass at
    3x that; on a small close-up (enlarged over 5x) none, only the main and the 2x passes."""
    from maskface.detect import profile_detector

    det = profile_detector("crowd", zoom_min_small_faces=0)
    factors: list[float] = []
    real = det.detect_at
    monkeypatch.setattr(det, "detect_at", lambda im, s: factors.append(s) or real(im, s))
    assert len(det.detect(astronaut)) == 1 and factors == [2.0, 6.0]
    factors.clear()
    x1, y1, x2, y2 = (int(v) for v in reference)
    pad = (x2 - x1) // 4
    close_up = astronaut[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]
    assert len(det.detect(close_up)) == 1
    assert len(factors) == 2 and factors[0] > 2.0 and factors[1] == 2.0


def _astronaut_crowd(astronaut, f: float) -> np.ndarray:
    """16 astronauts shrunk by ``f`` on a grey 1024x768 photo."""
    import cv2

    small = cv2.resize(astronaut, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    photo = np.full((768, 1024, 3), 128, np.uint8)
    for y in range(40, 700, 200):
        for x in range(40, 980 - small.shape[1], 220):
            photo[y : y + small.shape[0], x : x + small.shape[1]] = small
    return photo


def test_zoom_only_on_photos_that_show_small_faces(astronaut, monkeypatch):
    """The 3x zoom pass runs where the main pass found small faces: the crowd profile on one,
    the default on three. 16 astronauts with 15-px faces: the main pass sees 2, so the default
    stops there and the crowd profile zooms and finds all 16; with 17-px faces the main pass
    sees 8 and the default zooms too. The astronaut alone gets the main pass only."""
    from maskface.detect import create_detector, profile_detector

    default, crowd = create_detector(), profile_detector("crowd")
    factors: list[float] = []
    for det in (default, crowd):
        real = det.detect_at
        monkeypatch.setattr(det, "detect_at",
                            lambda im, s, real=real: factors.append(s) or real(im, s))
    tiny = _astronaut_crowd(astronaut, 0.14)
    assert len(default.detect(tiny)) == 2 and factors == [1.0]
    factors.clear()
    assert len(crowd.detect(tiny)) == 16 and factors == [1.0, 3.0]
    factors.clear()
    assert len(default.detect(_astronaut_crowd(astronaut, 0.16))) == 16 and factors == [1.0, 3.0]
    factors.clear()
    alone = crowd.detect(astronaut)
    assert factors == [2.0]
    np.testing.assert_array_equal(alone.boxes, default.detect(astronaut).boxes)


def test_detection_profiles(astronaut):
    """kiosk is YuNet at 640 px; crowd finds the astronaut once; an unknown profile is a
    clear input error."""
    from maskface.detect import profile_detector
    from maskface.errors import InputError

    kiosk = profile_detector("kiosk")
    assert (kiosk.name, kiosk.input_size) == ("yunet", 640)
    crowd = profile_detector("crowd", score_threshold=0.7)
    assert crowd.score_threshold == 0.7
    assert len(crowd.detect(astronaut)) == 1
    with pytest.raises(InputError, match="unknown detection profile"):
        profile_detector("stadium")


def test_detect_cli_no_zoom(astronaut, tmp_path):
    """`maskface detect` zooms a crowd of 17-px faces by default and finds all 16; `--no-zoom`
    stops at the main pass's 8, also under a profile; a detector without the option says so."""
    import json

    import cv2
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    photo = tmp_path / "crowd.png"
    cv2.imwrite(str(photo), _astronaut_crowd(astronaut, 0.16))
    counts = {}
    for name, extra in (("default", []), ("no_zoom", ["--no-zoom"]),
                        ("crowd_no_zoom", ["--profile", "crowd", "--no-zoom"])):
        out = tmp_path / name
        res = CliRunner().invoke(load_commands(), ["detect", str(photo), "--out", str(out),
                                                   "--classifier", "none", *extra])
        assert res.exit_code == 0, res.output
        counts[name] = len(json.loads((out / "crowd.json").read_text())["faces"])
    assert counts == {"default": 16, "no_zoom": 8, "crowd_no_zoom": 8}
    res = CliRunner().invoke(load_commands(), ["detect", str(photo), "--out", str(tmp_path / "m"),
                                               "--detector", "mtcnn", "--no-zoom"])
    assert res.exit_code == 1 and "no option small_face_zoom" in res.output


def test_video_detector_has_no_zoom(astronaut):
    """Door and video paths (the service, watch) take no 3x pass: a crowd behind the person at
    the door would cost it on every frame. The 17-px crowd the default zooms stays at the main
    pass's 8 faces."""
    from maskface.detect import create_detector, video_detector

    crowd = _astronaut_crowd(astronaut, 0.16)
    assert len(create_detector("retinaface").detect(crowd)) == 16
    live = video_detector("retinaface", input_size=1024)
    assert live.small_face_zoom is None and len(live.detect(crowd)) == 8
    assert video_detector("yunet").input_size == 640
    assert video_detector("mtcnn").name == "mtcnn"  # no zoom option to turn off

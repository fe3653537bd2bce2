"""Helpers and fixtures shared by the service tests (imported by tests/test_service_*.py)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskface.service import launch

pytest.importorskip("fastapi", reason="the service tests need the 'serve' extra")


def jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def decode_b64_jpeg(text: str) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(base64.b64decode(text), np.uint8), cv2.IMREAD_COLOR)


def _largest_face(image: np.ndarray):
    from maskface.detect import create_detector
    from maskface.results import Face

    det = create_detector("yunet").detect(image)
    assert len(det), "mask_face needs a detectable face"
    i = int(np.argmax((det.boxes[:, 2] - det.boxes[:, 0]) * (det.boxes[:, 3] - det.boxes[:, 1])))
    return Face(box=det.boxes[i], score=float(det.scores[i]), landmarks=det.landmarks[i])


def mask_face(image: np.ndarray, colour: str = "blue", seed: int = 0) -> np.ndarray:
    """A copy of ``image`` with a synthetic mask worn correctly on its largest face.

    Uses ``maskface.synth.apply_mask`` (needs the 'synth' extra: MediaPipe); without it, draws a
    plain mask polygon from the detector's five landmarks so the tests still run.
    """
    face = _largest_face(image)
    try:
        from maskface.synth import MaskStyle, apply_mask

        return apply_mask(image, face, MaskStyle(colour=colour, seed=seed))
    except ImportError:
        pass
    (rex, rey), (lex, ley), (nx, ny), (rmx, rmy), (lmx, lmy) = face.landmarks
    x1, y1, x2, y2 = face.box
    w = x2 - x1
    top = (rey + ley) / 2 + 0.45 * (ny - (rey + ley) / 2)
    pts = np.array([[x1 + 0.02 * w, top], [x2 - 0.02 * w, top], [x2 - 0.05 * w, (lmy + y2) / 2],
                    [(rmx + lmx) / 2, y2 + 0.02 * (y2 - y1)], [x1 + 0.05 * w, (rmy + y2) / 2]],
                   np.int32)
    out = image.copy()
    cv2.fillPoly(out, [pts], (235, 200, 150), lineType=cv2.LINE_AA)
    return out


def two_faces(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image, image[:, ::-1]], axis=1)


def blank(h: int = 480, w: int = 640) -> np.ndarray:
    """A photo with no face: a smooth gradient (uniform images trip some decoders' heuristics)."""
    x = np.linspace(40, 200, w, dtype=np.float32)
    return np.repeat(np.repeat(x[None, :, None], h, 0), 3, 2).astype(np.uint8)


def lfw_people(data_dir: Path, n_people: int = 1, min_images: int = 3) -> list[list[Path]]:
    """Photos of the first ``n_people`` LFW people (by name) with ``min_images`` photos, or
    skip."""
    root = data_dir / "lfw" / "images"
    if not root.is_dir():
        pytest.skip(f"LFW not found under {root}")
    found = []
    for person in sorted(root.iterdir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) >= min_images:
            found.append(photos[:min_images])
            if len(found) == n_people:
                return found
    pytest.skip(f"fewer than {n_people} LFW people with {min_images} photos")


def lfw_portrait(path: Path) -> np.ndarray:
    """An LFW photo cropped to its centre: the person is centred, bystanders sit at the edges."""
    from maskface.io import load_image

    return load_image(path)[45:205, 45:205]


def lfw_person(data_dir: Path, min_images: int = 3) -> list[Path]:
    """Photos of one LFW person with at least ``min_images`` photos, or skip."""
    return lfw_people(data_dir, 1, min_images)[0]


@pytest.fixture(scope="session")
def engine():
    """The models, loaded once for every service test (as the app loads them once)."""
    from maskface.service.engine import Engine

    return Engine()


def start_server(db: Path, port: int, log: Path, config: Path | None = None,
                 timeout: float = 120) -> subprocess.Popen:
    """``maskface serve`` in a subprocess on 127.0.0.1, returned once /v1/health answers."""
    return launch.start(db, log, config, port, timeout, threads="1")[0]

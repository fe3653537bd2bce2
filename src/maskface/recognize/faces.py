"""Choosing the face of a photo that should hold one person (enrolment, verification, eval)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskface.detect import FaceDetector
from maskface.errors import InputError
from maskface.results import Face

#: Where the five landmarks sit, as fractions of width/height, in a centred loose face crop
#: (the mean of YuNet's landmarks on LFW deep-funnelled images); the fallback when no face is
#: detected in an image known to show one face (evaluation only).
CENTRED_LANDMARKS = np.array(
    [[0.418, 0.452], [0.586, 0.447], [0.503, 0.551], [0.434, 0.630], [0.579, 0.627]],
    dtype=np.float32,
)


#: YuNet input size for portrait photos (a face filling much of a small image): the default
#: 1024 px upscaling is for small faces in scenes and costs ~13x more time here.
PORTRAIT_INPUT_SIZE = 320


def portrait_detector() -> FaceDetector:
    """The detector for centred face photos (LFW, VGGFace2, enrolment portraits)."""
    from maskface.detect.yunet import YuNetDetector

    return YuNetDetector(input_size=PORTRAIT_INPUT_SIZE)


@dataclass
class PickedFace:
    """The chosen face and how it was chosen: ``detected``, ``largest`` (of several) or
    ``fallback`` (none detected; centred landmarks assumed)."""

    face: Face
    how: str
    n_detected: int


def _faces(detector: FaceDetector, image: np.ndarray) -> list[Face]:
    det = detector.detect(image)
    return [Face(box=det.boxes[i], score=float(det.scores[i]), landmarks=det.landmarks[i])
            for i in range(len(det))]


def largest(faces: list[Face]) -> Face:
    return max(faces, key=lambda f: f.width * f.height)


def single_face(detector: FaceDetector, image: np.ndarray, source: str = "image",
                pick_largest: bool = False) -> PickedFace:
    """The one face of an enrolment photo.

    Raises:
        InputError: no face, or several faces and ``pick_largest`` is false.
    """
    faces = _faces(detector, image)
    if not faces:
        raise InputError(f"{source}: no face found")
    if len(faces) > 1 and not pick_largest:
        raise InputError(f"{source}: {len(faces)} faces found; use a photo of one person "
                         "or pass --largest to take the largest face")
    return PickedFace(largest(faces), "detected" if len(faces) == 1 else "largest", len(faces))


def central_face(detector: FaceDetector, image: np.ndarray) -> PickedFace:
    """The face of a centred face photo (LFW, VGGFace2 style), never failing.

    Among detections, the largest one covering the image centre wins (else the largest);
    with none, the face is assumed centred (:data:`CENTRED_LANDMARKS`).
    """
    faces = _faces(detector, image)
    h, w = image.shape[:2]
    if faces:
        cx, cy = w / 2, h / 2
        covering = [f for f in faces if f.box[0] <= cx <= f.box[2] and f.box[1] <= cy <= f.box[3]]
        return PickedFace(largest(covering or faces), "detected", len(faces))
    lm = CENTRED_LANDMARKS * np.array([w, h], np.float32)
    box = np.array([0.25 * w, 0.25 * h, 0.75 * w, 0.8 * h], np.float32)
    return PickedFace(Face(box=box, score=0.0, landmarks=lm), "fallback", 0)

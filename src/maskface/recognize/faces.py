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


#: smallest face (shorter box side, px) a person may be enrolled from. On the validation
#: identities (vggface2-sample; enrolment faces 62 px median), an enrolment photo shrunk to N px
#: keeps 0.883 of genuine pairs above the door's threshold at 40 px (0.889 as photographed),
#: 0.850 at 32, 0.828 at 24, 0.756 at 20 and 0.678 at 16 (docs/recognition.md)
MIN_ENROLMENT_FACE_PX = 32

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


def enrolment_size_problem(face: Face, source: str) -> str | None:
    """Why ``face`` is too small to enrol a person from (one line naming ``source``), or None."""
    size = min(face.width, face.height)
    if size >= MIN_ENROLMENT_FACE_PX:
        return None
    return (f"{source}: the face is only {size:.0f} px; enrol from a photo where it is at "
            f"least {MIN_ENROLMENT_FACE_PX} px (smaller faces are not recognised reliably)")


def comparison_size_warning(face: Face, source: str) -> str | None:
    """A line warning that ``face`` is too small for a 1:1 comparison to mean much, or None
    (the same size limit as enrolment: a 9-px face scored 0.04 against its own 500-px photo)."""
    size = min(face.width, face.height)
    if size >= MIN_ENROLMENT_FACE_PX:
        return None
    return (f"{source}: the face is only {size:.0f} px; a comparison of a face under "
            f"{MIN_ENROLMENT_FACE_PX} px is unreliable")


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

"""Face quality: is this face good enough to decide on? Fills ``face.quality``.

Four cheap measures on the detector's output (no model): size (the box's shorter side in
pixels), sharpness (variance of the Laplacian of the face, resized to a fixed 112 px so it does
not depend on distance), frontal pose (from the 5 landmarks: how far the nose sits from the
eyes' midline, and the eyes' roll) and exposure (mean grey level of the face). Each gives a
0..1 part; ``score`` is their geometric mean, used to rank the frames of a burst, and each
measure past its limit is a named problem the kiosk turns into advice ("come closer").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from maskface.results import Face, Quality

#: problem code -> advice for the person at the door
ADVICE = {
    "too_small": "come closer to the camera",
    "blurred": "hold still and look at the camera",
    "turned_away": "look straight at the camera",
    "too_dark": "step into the light",
    "too_bright": "step out of direct light",
    "out_of_frame": "step into the middle of the camera's view",
}


@dataclass(frozen=True)
class QualityLimits:
    """Where a measure becomes a problem. Sharpness is the Laplacian variance of the grey face
    at 112 px; ``max_yaw`` is the nose's offset from the eyes' midline in eye distances."""

    min_size: float = 64.0
    min_sharpness: float = 40.0
    max_yaw: float = 0.35
    max_roll_deg: float = 30.0
    min_exposure: float = 40.0
    max_exposure: float = 220.0
    #: the face must reach this far, in eye distances, from the eyes' midpoint to either side
    #: and below the mouth, inside the image (a face half past the edge is not judged)
    side_margin: float = 0.9
    chin_margin: float = 0.5


def out_of_frame(landmarks: np.ndarray, shape: tuple[int, ...], limits: QualityLimits) -> bool:
    """Whether the face runs past the image's side or bottom edge. From the landmarks, not the
    box: detectors clip their boxes to the image, so a face cut in half still gets a whole-
    looking box, and its mask was judged on the half that shows (a bare face called masked)."""
    h, w = shape[:2]
    eye_r, eye_l = np.asarray(landmarks[0], float), np.asarray(landmarks[1], float)
    dist = max(float(np.hypot(*(eye_l - eye_r))), 1.0)
    cx = (eye_r[0] + eye_l[0]) / 2
    chin = max(float(landmarks[3][1]), float(landmarks[4][1])) + limits.chin_margin * dist
    return (cx - limits.side_margin * dist < 0 or cx + limits.side_margin * dist > w
            or chin > h)


def yaw_roll(landmarks: np.ndarray) -> tuple[float, float]:
    """Signed nose offset from the eyes' midline (in eye distances) and the eyes' roll (deg)."""
    eye_r, eye_l, nose = (np.asarray(landmarks[i], np.float64) for i in range(3))
    axis = eye_l - eye_r
    dist = float(np.hypot(*axis)) or 1.0
    mid = (eye_l + eye_r) / 2
    yaw = float(np.dot(nose - mid, axis / dist)) / dist
    roll = float(np.degrees(np.arctan2(axis[1], axis[0])))
    return yaw, roll


class QualityAssessor:
    """Measures each face's quality; ``limits`` decide which measures are problems."""

    def __init__(self, limits: QualityLimits | None = None):
        self.limits = limits or QualityLimits()

    def measure(self, image: np.ndarray, face: Face) -> Quality:
        lim = self.limits
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (int(round(v)) for v in face.box[:4])
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        size = float(min(face.width, face.height))
        patch = image[y1:y2, x1:x2]
        if patch.size == 0:
            return Quality(0.0, size, 0.0, 0.0, 0.0, ("too_small",))
        grey = cv2.cvtColor(cv2.resize(patch, (112, 112), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_BGR2GRAY)
        sharp = float(cv2.Laplacian(grey, cv2.CV_64F).var())
        exposure = float(grey.mean())
        yaw, roll = yaw_roll(face.landmarks)
        # An extreme roll is as unusable as a turned head; fold both into one frontal part.
        frontal = float(np.clip(1 - abs(yaw) / (2 * lim.max_yaw), 0, 1)
                        * np.clip(1 - abs(roll) / (2 * lim.max_roll_deg), 0, 1))
        problems = []
        if size < lim.min_size:
            problems.append("too_small")
        if sharp < lim.min_sharpness:
            problems.append("blurred")
        if abs(yaw) > lim.max_yaw or abs(roll) > lim.max_roll_deg:
            problems.append("turned_away")
        if exposure < lim.min_exposure:
            problems.append("too_dark")
        elif exposure > lim.max_exposure:
            problems.append("too_bright")
        if out_of_frame(face.landmarks, image.shape, lim):
            problems.append("out_of_frame")
        parts = (min(1.0, size / (2 * lim.min_size)), min(1.0, sharp / (4 * lim.min_sharpness)),
                 frontal, max(0.0, 1 - abs(exposure - 128) / 128))
        score = float(np.prod(np.maximum(parts, 1e-3)) ** 0.25)
        return Quality(score, size, sharp, frontal, exposure, tuple(problems))

    def assess(self, image: np.ndarray, faces: Sequence[Face]) -> None:
        """Fill ``face.quality`` for every face."""
        for face in faces:
            face.quality = self.measure(image, face)


__all__ = ["ADVICE", "QualityAssessor", "QualityLimits", "out_of_frame", "yaw_roll"]

"""Dense face landmarks (MediaPipe FaceLandmarker, 478 points) for the face the detector found.

The project detector finds the face; a square crop around its box (with margin) goes to the
landmarker, whose points are mapped back to image pixels. MediaPipe is imported only when a
:class:`FaceLandmarker` is built, so ``import maskface.synth`` stays cheap.
"""

from __future__ import annotations

import logging
import os
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from maskface.errors import ModelError
from maskface.geometry import crop_padded, square_crop_box

log = logging.getLogger(__name__)

#: number of points of the FaceLandmarker mesh (468 face + 10 iris)
N_POINTS = 478

# Indices into the MediaPipe face mesh. "L"/"R" are image-left/image-right for a frontal face
# (the subject's right/left).
#: face silhouette, clockwise from the top of the forehead (10) through image-right and the chin
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54,
             103, 67, 109)
#: the lower silhouette, image-left side point (234) down round the chin (152) to 454
LOWER_OVAL = (234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365,
              397, 288, 361, 323, 454)
CHIN = 152
FOREHEAD = 10
NOSE_TIP = 1
SUBNASALE = 2
NOSE_BRIDGE_TOP = 168  # between the eyes
NOSE_ALAR_L, NOSE_ALAR_R = 129, 358
EYE_BOTTOM_L, EYE_BOTTOM_R = 145, 374
EYE_OUTER_L, EYE_OUTER_R = 33, 263
EYE_INNER_L, EYE_INNER_R = 133, 362
#: whole eye contours (lids), for "below the eyes" checks
EYE_L = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_R = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
MOUTH_L, MOUTH_R = 61, 291
UPPER_LIP_TOP, LOWER_LIP_BOTTOM = 0, 17
SIDE_L, SIDE_R = 234, 454  # silhouette at eye level, in front of the ears


@dataclass(frozen=True)
class DenseLandmarks:
    """478 face-mesh points in image pixels; ``z`` is relative depth in the same pixel scale
    (smaller is nearer the camera)."""

    points: np.ndarray  # (478, 2) float32
    z: np.ndarray  # (478,) float32

    def __post_init__(self) -> None:
        if self.points.shape != (N_POINTS, 2):
            raise ValueError(f"expected ({N_POINTS}, 2) landmarks, got {self.points.shape}")

    def __getitem__(self, idx) -> np.ndarray:
        return self.points[idx]

    @property
    def roll(self) -> float:
        """In-plane rotation (radians) of the line from the image-left to the image-right eye."""
        d = self.points[EYE_OUTER_R] - self.points[EYE_OUTER_L]
        return float(np.arctan2(d[1], d[0]))

    @property
    def yaw(self) -> float:
        """Head turn in -1..1 from the nose's position between the two silhouette sides:
        positive when the face turns towards image-right (its image-right side is then the far
        side, foreshortened)."""
        c, s = np.cos(-self.roll), np.sin(-self.roll)
        x = self.points[:, 0] * c - self.points[:, 1] * s  # x along the eye line
        left = x[NOSE_TIP] - x[SIDE_L]
        right = x[SIDE_R] - x[NOSE_TIP]
        return float(np.clip((left - right) / max(left + right, 1e-6), -1.0, 1.0))

    @property
    def box(self) -> np.ndarray:
        """Bounding box ``x1, y1, x2, y2`` of the mesh."""
        return np.concatenate([self.points.min(0), self.points.max(0)])

    @property
    def face_width(self) -> float:
        """Width of the face in the image (shrinks as the head turns)."""
        return float(np.linalg.norm(self.points[SIDE_R] - self.points[SIDE_L]))

    @property
    def size(self) -> float:
        """A face size that survives head turns: the width of a frontal face, or the
        eyes-to-chin height scaled to it when the head is turned."""
        height = float(np.linalg.norm(self.points[CHIN] - self.points[NOSE_BRIDGE_TOP]))
        return max(self.face_width, 1.1 * height)


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null: MediaPipe's C++ graph prints warning and info
    lines while it is built (absl logging, which ``GLOG_minloglevel`` does not reach), and
    they tell a user of ``enroll`` or ``synth`` nothing. Failures still raise."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class FaceLandmarker:
    """MediaPipe FaceLandmarker run on a square crop around a detected face box.

    One instance per process (it holds a native graph); close it, or use it as a context
    manager, to release it before interpreter shutdown.
    """

    def __init__(self, crop_size: int = 256, margins: tuple[float, ...] = (1.8, 2.5, 1.3),
                 min_confidence: float = 0.3):
        try:
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as exc:
            raise ModelError(
                f"dense landmarks need MediaPipe: pip install 'maskface[synth]' ({exc})"
            ) from None
        from maskface.models import model_bytes

        self.crop_size = crop_size
        #: crop sizes (times the box's longer side) tried in turn: the landmarker's own face
        #: detector misses some turned or tilted faces at one framing and finds them at another
        self.margins = tuple(margins)
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=model_bytes("face_landmarker")),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
        )
        self._mp_image = _mp_image_factory()
        with _native_stderr_silenced():
            self._task = vision.FaceLandmarker.create_from_options(opts)
        # MediaPipe's own finaliser fails during interpreter teardown; weakref.finalize runs
        # at exit while modules still exist (and on garbage collection before that).
        self._finalizer = weakref.finalize(self, _close_task, self._task)

    def landmarks(self, image: np.ndarray, box: np.ndarray | None = None
                  ) -> DenseLandmarks | None:
        """Dense landmarks of the face in ``box`` (``x1, y1, x2, y2``; whole image if ``None``),
        or ``None`` when the landmarker finds no face there at any of its framings."""
        h, w = image.shape[:2]
        if box is None:
            return self._run(image, np.array([0, 0, w, h], np.float64), 1.0)
        box = np.asarray(box, np.float64)
        for margin in self.margins:
            lm = self._run(image, box, margin)
            # The crop may hold other faces: accept only the mesh whose nose is in the box
            # (grown by 30%: on a profile the nose sticks out of the detector's box).
            if lm is not None and _inside(lm.points[NOSE_TIP], box, 0.3):
                return lm
        return None

    def _run(self, image: np.ndarray, box: np.ndarray, margin: float) -> DenseLandmarks | None:
        sq = square_crop_box(box, margin)
        side = sq[2] - sq[0]
        crop = crop_padded(image, sq)
        interp = cv2.INTER_AREA if crop.shape[0] > self.crop_size else cv2.INTER_LINEAR
        crop = cv2.resize(crop, (self.crop_size, self.crop_size), interpolation=interp)
        rgb = np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        result = self._task.detect(self._mp_image(rgb))
        if not result.face_landmarks:
            return None
        pts = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[0]], np.float64)
        # Normalised crop coordinates -> image pixels (z is scaled like x by MediaPipe).
        xy = pts[:, :2] * side + sq[:2]
        return DenseLandmarks(xy.astype(np.float32), (pts[:, 2] * side).astype(np.float32))

    def close(self) -> None:
        """Release the native graph (idempotent)."""
        self._finalizer()

    def __enter__(self) -> FaceLandmarker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _inside(pt: np.ndarray, box: np.ndarray, grow: float = 0.0) -> bool:
    mx, my = (box[2] - box[0]) * grow, (box[3] - box[1]) * grow
    return bool(box[0] - mx <= pt[0] <= box[2] + mx and box[1] - my <= pt[1] <= box[3] + my)


def _close_task(task) -> None:
    try:
        task.close()
    except RuntimeError:
        # At interpreter exit MediaPipe's dispatcher thread is already gone and the OS frees the
        # native graph; mark the task closed so MediaPipe's own __del__ does not retry and fail.
        task._handle = None


def _mp_image_factory():
    import mediapipe as mp

    def make(rgb: np.ndarray):
        return mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)

    return make

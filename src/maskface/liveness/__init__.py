"""Liveness (presentation-attack detection): fills ``face.liveness`` with the MiniFASNet pair's
mean live probability and a ``live`` / ``spoof`` label (``unknown`` on grey frames).

Two MiniFASNet models by Minivision (Apache-2.0), converted to one ONNX graph
(``scripts/export_minifasnet.py``), each scoring its own crop of the same face (2.7x and 4.0x
the box, 80x80, BGR 0..255); the crop is box-dependent, so the detector's box is first mapped
to the reference detector's box shape (:mod:`maskface.liveness.crop`). See docs/liveness.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from maskface.errors import InputError
from maskface.liveness.crop import REFERENCE_FROM, liveness_crops
from maskface.results import Face, Liveness

MODEL = "liveness_minifasnet"
#: the shipped operating threshold on the mean live probability, fixed a priori (0.5: the live
#: class has the majority of the two models' mean probability), not tuned on any test set
DEFAULT_THRESHOLD = 0.5
#: a frame whose colour channels differ by less than this (mean |B-G| + mean |G-R|, 8-bit
#: levels) is grey: an infrared or monochrome camera. The models were trained on colour and
#: score half of NUAA's live frames as attacks once they are made grey (docs/liveness.md).
#: Colour photos of dataroots and ilc2021 measure 6.5 and more (1st percentile), grey ones 0.
GREY_TOLERANCE = 2.0


def is_grey_frame(image: np.ndarray) -> bool:
    """Whether a BGR frame carries no colour, from a grid of about 120 x 160 of its pixels (a
    quarter of a millisecond at any frame size)."""
    step = max(1, min(image.shape[:2]) // 120)
    s = image[::step, ::step].astype(np.int16)
    diff = np.abs(s[..., 0] - s[..., 1]).mean() + np.abs(s[..., 1] - s[..., 2]).mean()
    return bool(diff < GREY_TOLERANCE)


class LivenessChecker:
    """Scores faces as live or spoof.

    Args:
        detector: name of the detector whose boxes are scored (``yunet``, ``retinaface``,
            ``mtcnn``) — it selects the box mapping — or ``reference`` for boxes already in the
            reference shape.
        threshold: a face is ``live`` when its score is at least this.
    """

    def __init__(self, detector: str = "yunet", threshold: float = DEFAULT_THRESHOLD,
                 model: str = MODEL):
        from maskface.models import ort_session

        if detector not in REFERENCE_FROM:
            raise InputError(f"liveness: no box mapping for detector '{detector}'; known: "
                             f"{', '.join(sorted(REFERENCE_FROM))}")
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"liveness threshold {threshold} is outside [0, 1]")
        self.detector = detector
        self.mapping = REFERENCE_FROM[detector]
        self.threshold = float(threshold)
        self.session = ort_session(model)
        self._inputs = [i.name for i in self.session.get_inputs()]

    def scores(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Mean live probability of each box, batched in one run."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros(0, np.float32)
        crops = liveness_crops(image, boxes, self.mapping)
        probs = self.session.run(None, dict(zip(self._inputs, crops)))[0]
        return probs[:, 1].astype(np.float32)

    def check(self, image: np.ndarray, faces: Sequence[Face]) -> None:
        """Fill ``face.liveness`` for every face; on a grey frame the label is ``unknown``
        (problem ``grey_frame``): the score is kept for the record but means nothing."""
        if not faces:
            return
        scores = self.scores(image, np.stack([f.box[:4] for f in faces]))
        grey = is_grey_frame(image)
        for face, s in zip(faces, scores):
            if grey:
                face.liveness = Liveness(float(s), "unknown", self.threshold, "grey_frame")
            else:
                face.liveness = Liveness(float(s), "live" if s >= self.threshold else "spoof",
                                         self.threshold)


__all__ = ["DEFAULT_THRESHOLD", "GREY_TOLERANCE", "LivenessChecker", "is_grey_frame"]

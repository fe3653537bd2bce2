"""The detector interface: every backend returns boxes, scores and 5 landmarks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass
class Detections:
    """Faces found in one image, as parallel numpy arrays (pixels of the input image).

    ``boxes`` is ``(N, 4)`` ``x1, y1, x2, y2``; ``scores`` ``(N,)``; ``landmarks`` ``(N, 5, 2)``
    in the order right eye, left eye, nose tip, right mouth corner, left mouth corner (the
    subject's right, i.e. the left of the image for a frontal face).
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32),
                   np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, idx) -> Detections:
        return Detections(self.boxes[idx].reshape(-1, 4), self.scores[idx].reshape(-1),
                          self.landmarks[idx].reshape(-1, 5, 2))

    def scaled(self, factor: float, offset: tuple[float, float] = (0.0, 0.0)) -> Detections:
        """Map coordinates by ``p * factor + offset`` (e.g. back from a resized or tiled input)."""
        off = np.asarray(offset, dtype=np.float32)
        return Detections(
            (self.boxes * factor + np.tile(off, 2)).astype(np.float32),
            self.scores.copy(),
            (self.landmarks * factor + off).astype(np.float32),
        )

    @staticmethod
    def concat(parts: list[Detections]) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Detections.empty()
        return Detections(np.concatenate([p.boxes for p in parts]),
                          np.concatenate([p.scores for p in parts]),
                          np.concatenate([p.landmarks for p in parts]))


class FaceDetector(ABC):
    """A face detector. Subclasses load their model once in ``__init__``."""

    name: str = "detector"

    def __init__(self, score_threshold: float = 0.6):
        self.score_threshold = score_threshold

    @abstractmethod
    def detect(self, image: np.ndarray) -> Detections:
        """Detect faces in a BGR uint8 image."""

    def __call__(self, image: np.ndarray) -> Detections:
        return self.detect(image)

"""The seeds' face detector, kept only as a speed/accuracy baseline for ``maskface bench``.

OpenCV's ResNet-10 SSD (300x300 Caffe model) run through ``cv2.dnn``. It predicts no landmarks,
so its :class:`~maskface.detect.base.Detections` carry NaN landmarks: nothing downstream that
needs alignment can use it, which is why it is not offered by ``create_detector``.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from maskface.detect.base import Detections, FaceDetector
from maskface.models import model_path

#: BGR mean the model was trained with (from OpenCV's face-detector sample)
_MEAN = (104.0, 177.0, 123.0)


class SSDBaselineDetector(FaceDetector):
    """ResNet-10 SSD on a 300x300 resize of the whole image, as the seeds ran it."""

    name = "res10_ssd"

    def __init__(self, score_threshold: float = 0.5, input_size: int = 300):
        super().__init__(score_threshold)
        self.input_size = input_size
        self._net = cv2.dnn.readNetFromCaffe(str(model_path("res10_ssd_prototxt")),
                                             str(model_path("res10_ssd")))
        self._lock = threading.Lock()  # cv2.dnn.Net holds its input between setInput/forward

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        s = self.input_size
        blob = cv2.dnn.blobFromImage(image, 1.0, (s, s), _MEAN, swapRB=False, crop=False)
        with self._lock:
            self._net.setInput(blob)
            out = self._net.forward()  # (1, 1, K, 7): _, class, score, x1, y1, x2, y2 (0..1)
        rows = out.reshape(-1, 7)
        rows = rows[rows[:, 2] >= self.score_threshold]
        if len(rows) == 0:
            return Detections.empty()
        boxes = np.clip(rows[:, 3:7], 0.0, 1.0) * np.array([w, h, w, h], dtype=np.float32)
        keep = (boxes[:, 2] - boxes[:, 0] > 1) & (boxes[:, 3] - boxes[:, 1] > 1)
        boxes, scores = boxes[keep].astype(np.float32), rows[keep, 2].astype(np.float32)
        landmarks = np.full((len(boxes), 5, 2), np.nan, dtype=np.float32)
        return Detections(boxes, scores, landmarks)

"""YuNet (OpenCV Zoo) through ``cv2.FaceDetectorYN``: fast, with 5 landmarks."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from maskface.detect.base import Detections, FaceDetector
from maskface.models import model_path


class YuNetDetector(FaceDetector):
    """YuNet run on the image resized so its longest side is ``input_size``.

    Small images are upscaled: YuNet misses faces under about 20 px, and masked faces more so.
    """

    name = "yunet"

    def __init__(self, score_threshold: float = 0.6, nms_threshold: float = 0.3,
                 input_size: int = 1024, top_k: int = 5000):
        super().__init__(score_threshold)
        self.input_size = input_size
        self._net = cv2.FaceDetectorYN.create(
            str(model_path("yunet")), "", (320, 320), score_threshold, nms_threshold, top_k
        )
        self._lock = threading.Lock()  # the cv2 object keeps per-call state (input size)

    def detect_at(self, image: np.ndarray, scale: float) -> Detections:
        """Detect on ``image`` resized by ``scale``; coordinates come back in ``image`` pixels."""
        h, w = image.shape[:2]
        if scale != 1.0:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            img = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                             interpolation=interp)
        else:
            img = image
        with self._lock:
            self._net.setInputSize((img.shape[1], img.shape[0]))
            _, raw = self._net.detect(img)
        if raw is None or len(raw) == 0:
            return Detections.empty()
        raw = raw.astype(np.float32)
        boxes = np.concatenate([raw[:, 0:2], raw[:, 0:2] + raw[:, 2:4]], axis=1)
        det = Detections(boxes, raw[:, 14].copy(), raw[:, 4:14].reshape(-1, 5, 2))
        return det.scaled(1.0 / scale) if scale != 1.0 else det

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        return self.detect_at(image, self.input_size / max(h, w))

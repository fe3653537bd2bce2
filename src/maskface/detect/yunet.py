"""YuNet (OpenCV Zoo): fast, with 5 landmarks; run on onnxruntime (``yunet_onnx``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from maskface.detect.base import Detections
from maskface.detect.multiscale import ScaledDetector, rescale, resize
from maskface.detect.yunet_onnx import YuNetOnnx


class YuNetDetector(ScaledDetector):
    """YuNet run on the image resized so its longest side is ``input_size``.

    Small images are upscaled: YuNet misses faces under about 20 px, and masked faces more so.
    ``scales``, ``flip`` and ``tile`` are described in :class:`ScaledDetector`.
    """

    name = "yunet"

    def __init__(self, score_threshold: float = 0.6, nms_threshold: float = 0.3,
                 input_size: int = 640, scales: Sequence[float] = (1.0,), flip: bool = False,
                 tile: bool = False, top_k: int = 5000, **kwargs):
        super().__init__(score_threshold, input_size, scales, flip, tile, **kwargs)
        # The same network and decoding as cv2.FaceDetectorYN, on onnxruntime: identical
        # outputs for ~2.2x less CPU (maskface.detect.yunet_onnx, docs/performance.md).
        self._net = YuNetOnnx(self.pass_threshold, nms_threshold, top_k)
        self._lock = threading.Lock()

    def detect_at(self, image: np.ndarray, scale: float) -> Detections:
        img, back = resize(image, scale)
        with self._lock:
            self._net.setInputSize((img.shape[1], img.shape[0]))
            _, raw = self._net.detect(img)
        if raw is None or len(raw) == 0:
            return Detections.empty()
        raw = raw.astype(np.float32)
        boxes = np.concatenate([raw[:, 0:2], raw[:, 0:2] + raw[:, 2:4]], axis=1)
        return rescale(Detections(boxes, raw[:, 14].copy(), raw[:, 4:14].reshape(-1, 5, 2)), back)

"""YuNet on onnxruntime: a drop-in for ``cv2.FaceDetectorYN`` that needs ~2.5x less CPU.

OpenCV's DNN module runs YuNet's convolutions far slower than onnxruntime's kernels, and
onnxruntime cannot run the block-quantised release as is; ``scripts/export_yunet_onnx.py``
folds its weights to float32 (the values OpenCV computes) into ``weights/yunet_fp32.onnx``.
Pre- and post-processing follow OpenCV's ``FaceDetectorYN`` (``face_detect.cpp``): the BGR image
is padded to a multiple of 32, and each stride's anchor-free outputs are decoded to boxes and
five landmarks, scored ``sqrt(cls * obj)``, then non-maximum suppressed.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from maskface.geometry import nms
from maskface.models import ort_session

STRIDES = (8, 16, 32)
_DIVISOR = 32


class YuNetOnnx:
    """Same calls and output as ``cv2.FaceDetectorYN``: ``setInputSize((w, h))`` then
    ``detect(img) -> (1, faces)``, faces ``(N, 15)`` = x, y, w, h, 5 landmarks (x, y), score;
    ``None`` when there is no face."""

    def __init__(self, score_threshold: float = 0.6, nms_threshold: float = 0.3,
                 top_k: int = 5000, threads: int | None = None):
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self._session = ort_session("yunet_fp32", threads)
        self._input = self._session.get_inputs()[0].name
        self._grids: dict[tuple[int, int], list[np.ndarray]] = {}
        self._lock = threading.Lock()

    def setInputSize(self, size: tuple[int, int]) -> None:  # noqa: N802 - cv2's name
        """Kept for drop-in compatibility; the size is taken from each image."""

    def _grid(self, pad_h: int, pad_w: int) -> list[np.ndarray]:
        """Per stride, the (column, row) of every anchor in the outputs' order, cached."""
        key = (pad_h, pad_w)
        if key not in self._grids:
            grids = []
            for s in STRIDES:
                rows, cols = pad_h // s, pad_w // s
                r, c = np.divmod(np.arange(rows * cols, dtype=np.float32), cols)
                grids.append(np.stack([c, r], axis=1))
            self._grids[key] = grids
        return self._grids[key]

    def detect(self, image: np.ndarray) -> tuple[int, np.ndarray | None]:
        h, w = image.shape[:2]
        pad_h, pad_w = -(-h // _DIVISOR) * _DIVISOR, -(-w // _DIVISOR) * _DIVISOR
        # One float copy of the image, already padded and in NCHW order; copying OpenCV's
        # per-channel planes is ~2x faster than numpy's strided transpose (0.34 vs 0.60 ms).
        blob = (np.zeros if (pad_h, pad_w) != (h, w) else np.empty)(
            (1, 3, pad_h, pad_w), np.float32)
        for c, plane in enumerate(cv2.split(image)):
            blob[0, c, :h, :w] = plane
        with self._lock:
            outs = self._session.run(None, {self._input: blob})
        n = len(STRIDES)
        faces = []
        for i, (s, grid) in enumerate(zip(STRIDES, self._grid(pad_h, pad_w))):
            cls = np.clip(outs[i][0, :, 0], 0, 1)
            obj = np.clip(outs[i + n][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            keep = score >= self.score_threshold
            if not keep.any():
                continue
            g, bbox, kps = grid[keep], outs[i + 2 * n][0][keep], outs[i + 3 * n][0][keep]
            centre = (g + bbox[:, :2]) * s
            size = np.exp(bbox[:, 2:4]) * s
            lms = (kps.reshape(-1, 5, 2) + g[:, None, :]) * s
            faces.append(np.concatenate(
                [centre - size / 2, size, lms.reshape(-1, 10), score[keep, None]], axis=1))
        if not faces:
            return 1, None
        raw = np.concatenate(faces).astype(np.float32)
        xyxy = np.concatenate([raw[:, :2], raw[:, :2] + raw[:, 2:4]], axis=1)
        kept = nms(xyxy, raw[:, 14], self.nms_threshold)[: self.top_k]
        return 1, raw[kept]

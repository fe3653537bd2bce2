"""MTCNN (P-Net → R-Net → O-Net cascade) on onnxruntime, with our own cascade logic.

The three ONNX graphs (registry names ``mtcnn_pnet``/``mtcnn_rnet``/``mtcnn_onet``) are the
Keras ports of the original Caffe models. Those were trained on *transposed* images (MATLAB's
column-major layout), so every input is fed as ``(N, W, H, 3)`` RGB scaled to ``[-1, 1]`` and
P-Net's maps are transposed back.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from maskface.detect.base import Detections, FaceDetector
from maskface.errors import InputError
from maskface.models import ort_session

PNET_STRIDE, PNET_CELL = 2, 12


def _normalise(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) - 127.5) * 0.0078125


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union"
         ) -> np.ndarray:
    """MTCNN's NMS: ``min`` mode divides the overlap by the smaller box (drops nested boxes)."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.array(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (the refinement nets see square crops)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return boxes + reg * np.stack([w, h, w, h], axis=1)


def _crops(rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Zero-padded crops of integer ``boxes`` resized to ``size``, as ``(N, W, H, 3)`` input."""
    h, w = rgb.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(np.int64)):
        bw, bh = max(1, x2 - x1 + 1), max(1, y2 - y1 + 1)
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx1, sy1, sx2, sy2 = max(0, x1), max(0, y1), min(w, x2 + 1), min(h, y2 + 1)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = rgb[sy1:sy2, sx1:sx2]
        out[k] = _normalise(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
    return out.transpose(0, 2, 1, 3)


class MTCNNDetector(FaceDetector):
    """MTCNN with an image pyramid down from ``min_face_size`` pixels.

    ``score_threshold`` applies to the last stage (O-Net); ``stage_thresholds`` gate P-Net and
    R-Net. Faces smaller than ``min_face_size`` are not searched for.
    """

    name = "mtcnn"

    def __init__(self, score_threshold: float = 0.7, min_face_size: int = 20,
                 scale_factor: float = 0.709, stage_thresholds: tuple[float, float] = (0.6, 0.7),
                 threads: int | None = None, **unsupported):
        if unsupported:
            raise InputError(f"the mtcnn detector has no option {', '.join(unsupported)} "
                             f"(it searches an image pyramid down to min_face_size)")
        super().__init__(score_threshold)
        self.min_face_size = min_face_size
        self.scale_factor = scale_factor
        self.stage_thresholds = stage_thresholds
        self._pnet = ort_session("mtcnn_pnet", threads=threads)
        self._rnet = ort_session("mtcnn_rnet", threads=threads)
        self._onet = ort_session("mtcnn_onet", threads=threads)
        self._lock = threading.Lock()

    def _scales(self, h: int, w: int) -> list[float]:
        m = PNET_CELL / self.min_face_size
        scales, side = [], min(h, w) * m
        while side >= PNET_CELL:
            scales.append(m * self.scale_factor ** len(scales))
            side *= self.scale_factor
        return scales

    def _proposals(self, rgb: np.ndarray) -> np.ndarray:
        """P-Net over the pyramid: candidate boxes ``(N, 5)`` (x1, y1, x2, y2, score)."""
        h, w = rgb.shape[:2]
        found = []
        for scale in self._scales(h, w):
            img = cv2.resize(rgb, (int(np.ceil(w * scale)), int(np.ceil(h * scale))),
                             interpolation=cv2.INTER_AREA)
            x = _normalise(img)[None].transpose(0, 2, 1, 3)
            reg, prob = self._pnet.run(None, {self._pnet.get_inputs()[0].name: x})
            reg, prob = reg[0].transpose(1, 0, 2), prob[0].transpose(1, 0, 2)[:, :, 1]
            rows, cols = np.nonzero(prob >= self.stage_thresholds[0])
            if not len(rows):
                continue
            cells = np.stack([cols, rows, cols, rows], axis=1).astype(np.float64)
            boxes = np.fix((PNET_STRIDE * cells + [1, 1, PNET_CELL, PNET_CELL]) / scale)
            cand = np.concatenate([boxes, prob[rows, cols, None], reg[rows, cols]], axis=1)
            found.append(cand[_nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5))
        cand = np.concatenate(found)
        cand = cand[_nms(cand[:, :4], cand[:, 4], 0.7)]
        wh = np.concatenate([cand[:, 2:4] - cand[:, 0:2]] * 2, axis=1)
        boxes = _square(cand[:, :4] + cand[:, 5:9] * wh)
        return np.concatenate([np.fix(boxes), cand[:, 4:5]], axis=1)

    def _refine(self, rgb: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """R-Net: re-score and regress the proposals."""
        x = _crops(rgb, cand[:, :4], 24)
        reg, prob = self._rnet.run(None, {self._rnet.get_inputs()[0].name: x})
        keep = prob[:, 1] > self.stage_thresholds[1]
        cand, reg, score = cand[keep, :4], reg[keep], prob[keep, 1]
        if not len(cand):
            return np.zeros((0, 5))
        pick = _nms(cand, score, 0.7)
        boxes = _square(_regress(cand[pick], reg[pick]))
        return np.concatenate([boxes, score[pick, None]], axis=1)

    def _output(self, rgb: np.ndarray, cand: np.ndarray) -> Detections:
        """O-Net: final score, box and the 5 landmarks."""
        boxes = np.fix(cand[:, :4])
        x = _crops(rgb, boxes, 48)
        names = [o.name for o in self._onet.get_outputs()]
        out = dict(zip(names, self._onet.run(None, {self._onet.get_inputs()[0].name: x})))
        reg, pts, prob = out["dense_5"], out["dense_6"], out["softmax_2"]
        keep = prob[:, 1] >= self.score_threshold
        boxes, reg, pts, score = boxes[keep], reg[keep], pts[keep], prob[keep, 1]
        if not len(boxes):
            return Detections.empty()
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        # Landmarks are relative to the crop: 5 x-coordinates, then 5 y-coordinates.
        lms = np.stack([pts[:, :5] * w[:, None] + boxes[:, :1] - 1,
                        pts[:, 5:] * h[:, None] + boxes[:, 1:2] - 1], axis=2)
        boxes = _regress(boxes, reg)
        pick = _nms(boxes, score, 0.7, mode="min")
        return Detections(boxes[pick].astype(np.float32), score[pick].astype(np.float32),
                          lms[pick].astype(np.float32))

    def detect(self, image: np.ndarray) -> Detections:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        with self._lock:
            cand = self._proposals(rgb)
            if len(cand):
                cand = self._refine(rgb, cand)
            if not len(cand):
                return Detections.empty()
            return self._output(rgb, cand)

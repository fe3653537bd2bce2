"""RetinaFace-MobileNet0.25 on onnxruntime, with our own pre- and post-processing.

The ONNX graph (registry name ``retinaface``) takes ``float32 (N, 3, H, W)`` BGR pixels minus
the channel means and returns, per anchor, box offsets ``loc (N, A, 4)``, softmax scores
``conf (N, A, 2)`` and landmark offsets ``landmarks (N, A, 10)``. Anchors are the standard
RetinaFace ones: strides 8/16/32 with two square sizes each, decoded with variances 0.1/0.2.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from maskface.detect.base import Detections
from maskface.detect.multiscale import ScaledDetector, rescale, resize
from maskface.errors import ModelError
from maskface.geometry import nms
from maskface.models import ort_session

#: feature strides and the anchor sizes (pixels) at each, as the model was trained
ANCHORS = ((8, (16, 32)), (16, (64, 128)), (32, (256, 512)))
VARIANCES = (0.1, 0.2)
#: BGR channel means subtracted before the network (the training recipe's values)
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


@lru_cache(maxsize=16)
def anchor_grid(height: int, width: int) -> np.ndarray:
    """Anchor centres and sizes ``(A, 4)`` ``cx, cy, w, h`` in pixels, in the network's order
    (per stride: rows, then columns, then sizes)."""
    parts = []
    for stride, sizes in ANCHORS:
        ny, nx = -(-height // stride), -(-width // stride)
        ys, xs = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride
        for_each = np.repeat(centres, len(sizes), axis=0)
        side = np.tile(np.asarray(sizes, np.float64), len(centres))
        wh = np.stack([side, side], axis=1)
        parts.append(np.concatenate([for_each, wh], axis=1))
    return np.concatenate(parts).astype(np.float32)


def decode(loc: np.ndarray, pts: np.ndarray, anchors: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Anchor offsets to ``x1, y1, x2, y2`` boxes and ``(A, 5, 2)`` landmarks, in pixels."""
    c, s = anchors[:, :2], anchors[:, 2:]
    centre = c + loc[:, :2] * VARIANCES[0] * s
    size = s * np.exp(loc[:, 2:] * VARIANCES[1])
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    lms = c[:, None, :] + pts.reshape(-1, 5, 2) * VARIANCES[0] * s[:, None, :]
    return boxes, lms


class RetinaFaceDetector(ScaledDetector):
    """RetinaFace run on the image resized so its longest side is ``input_size``.

    Landmarks come out image-left eye first, the order of :class:`Detections`. ``scales``,
    ``flip``, ``tile`` and the small-face zoom are described in :class:`ScaledDetector`. By
    default a photo whose main pass shows three or more faces under 40 px (a crowd) is searched
    again at 3x for more of them; other photos get the main pass only (docs/detection.md).
    """

    name = "retinaface"

    def __init__(self, score_threshold: float = 0.6, nms_threshold: float = 0.4,
                 input_size: int = 1024, scales: Sequence[float] = (1.0,), flip: bool = False,
                 tile: bool = False, threads: int | None = None,
                 small_face_zoom: float | None = 3.0, zoom_min_small_faces: int = 3, **kwargs):
        super().__init__(score_threshold, input_size, scales, flip, tile,
                         small_face_zoom=small_face_zoom,
                         zoom_min_small_faces=zoom_min_small_faces, **kwargs)
        self.nms_threshold = nms_threshold
        self._session = ort_session("retinaface", threads=threads)
        self._input = self._session.get_inputs()[0].name

    def detect_at(self, image: np.ndarray, scale: float) -> Detections:
        img, back = resize(image, scale)
        nh, nw = img.shape[:2]
        # Pad to a multiple of the coarsest stride so every feature map has whole cells; the
        # padding is the mean colour (zero after normalisation).
        ph, pw = -(-nh // 32) * 32, -(-nw // 32) * 32
        x = np.zeros((ph, pw, 3), np.float32)
        x[:nh, :nw] = img.astype(np.float32) - MEAN_BGR
        blob = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        loc, conf, pts = self._session.run(None, {self._input: blob})
        anchors = anchor_grid(ph, pw)
        if len(anchors) != loc.shape[1]:
            raise ModelError(f"retinaface: {loc.shape[1]} outputs for {len(anchors)} anchors; "
                             "not the RetinaFace-MobileNet0.25 graph this decoder expects")
        scores = conf[0, :, 1]
        keep = scores >= self.pass_threshold
        if not keep.any():
            return Detections.empty()
        boxes, lms = decode(loc[0][keep], pts[0][keep], anchors[keep])
        scores = scores[keep]
        order = nms(boxes, scores, self.nms_threshold)
        det = Detections(boxes[order].astype(np.float32), scores[order].astype(np.float32),
                         lms[order].astype(np.float32))
        return rescale(det, back)

"""The MiniFASNet crop: the detector's box mapped to the reference box shape, scaled around its
centre, shifted (not clipped) back into the frame, sliced inclusively, resized to 80x80.

Follows ``shared/models/minifasnet/README.md`` exactly; the crop is box-dependent, so each
detector's box is first converted to the shape of the reference detector's (near-square) box.
"""

from __future__ import annotations

import cv2
import numpy as np

#: (width factor, height factor, centre-x shift, centre-y shift; shifts in units of the
#: detector's own box width / height) that turn a detector's box into the reference shape.
#: YuNet: from the model README (294 LFW images). RetinaFace and MTCNN: related to the mapped
#: YuNet box on 300 LFW images by scripts/fit_liveness_boxes.py (no liveness data used).
REFERENCE_FROM: dict[str, tuple[float, float, float, float]] = {
    "yunet": (1.143, 0.892, 0.0, 0.056),
    "retinaface": (1.157, 0.905, -0.015, 0.054),
    "mtcnn": (1.156, 0.916, 0.017, 0.069),
    "reference": (1.0, 1.0, 0.0, 0.0),
}

#: the two models' crop scales, in the ONNX graph's input order
SCALES = (2.7, 4.0)
SIZE = 80


def to_reference(box: np.ndarray, mapping: tuple[float, float, float, float]) -> np.ndarray:
    """``(x1, y1, x2, y2)`` mapped to the reference detector's box shape."""
    fw, fh, dx, dy = mapping
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2 + dx * w, (y1 + y2) / 2 + dy * h
    nw, nh = w * fw, h * fh
    return np.array([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], np.float32)


def crop_window(box: np.ndarray, scale: float, width: int,
                height: int) -> tuple[int, int, int, int]:
    """Inclusive pixel window ``(x0, y0, x1, y1)`` of one scaled crop (the reference rule)."""
    # The reference box is integer (x, y, w, h) with w = r - l + 1.
    x, y = int(box[0]), int(box[1])
    w, h = int(box[2] - box[0] + 1), int(box[3] - box[1] + 1)
    w, h = max(w, 1), max(h, 1)
    s = min(scale, (height - 1) / h, (width - 1) / w)
    nw, nh = w * s, h * s
    cx, cy = x + w / 2, y + h / 2
    x0, x1 = cx - nw / 2, cx + nw / 2
    y0, y1 = cy - nh / 2, cy + nh / 2
    # Shift the window back inside the frame, left/top edge first; never clip (keeps w:h).
    if x0 < 0:
        x1 -= x0
        x0 = 0
    if y0 < 0:
        y1 -= y0
        y0 = 0
    if x1 > width - 1:
        x0 -= x1 - (width - 1)
        x1 = width - 1
    if y1 > height - 1:
        y0 -= y1 - (height - 1)
        y1 = height - 1
    return int(x0), int(y0), int(x1), int(y1)


def liveness_crops(image: np.ndarray, boxes: np.ndarray,
                   mapping: tuple[float, float, float, float]) -> list[np.ndarray]:
    """One float32 batch (N, 3, 80, 80), BGR 0..255, per crop scale in :data:`SCALES`."""
    h, w = image.shape[:2]
    out = []
    for scale in SCALES:
        batch = np.empty((len(boxes), 3, SIZE, SIZE), np.float32)
        for i, box in enumerate(boxes):
            x0, y0, x1, y1 = crop_window(to_reference(box, mapping), scale, w, h)
            patch = cv2.resize(image[y0:y1 + 1, x0:x1 + 1], (SIZE, SIZE))
            batch[i] = patch.transpose(2, 0, 1)
        out.append(batch)
    return out

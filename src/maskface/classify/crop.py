"""The one face crop the mask classifier sees, shared by training, evaluation and inference."""

from __future__ import annotations

import cv2
import numpy as np

from maskface.geometry import crop_padded, square_crop_box

#: side of the square crop around a detected face box, relative to the box's longer side.
#: The training crops are tight face crops, and YuNet's boxes run from brow to chin, so a small
#: margin keeps the mask's edges and the chin in view.
CROP_SCALE = 1.15


def face_crop(image: np.ndarray, box: np.ndarray, size: int, scale: float = CROP_SCALE
              ) -> np.ndarray:
    """Square crop of ``size`` x ``size`` px centred on ``box`` (x1, y1, x2, y2), BGR uint8."""
    crop = crop_padded(image, square_crop_box(box, scale))
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)


def whole_image_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Centre the whole image on a square canvas (edge-replicated) and resize: for face crops
    that are already cut out, as in the training folders."""
    h, w = image.shape[:2]
    return face_crop(image, np.array([0, 0, w, h], dtype=np.float64), size, scale=1.0)

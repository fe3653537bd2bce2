"""Face alignment: a 5-point similarity warp to 112x112, one template for the whole project.

The template is the ArcFace/InsightFace convention (also SFace's ``alignCrop``), so every model
that takes an aligned face sees the same geometry.
"""

from __future__ import annotations

import cv2
import numpy as np

#: reference landmarks for a 112x112 crop: right eye, left eye, nose, right/left mouth corner
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
ALIGNED_SIZE = 112


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src to dst
    (Umeyama, 1991). Returns a 2x3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    var_s = (s**2).sum() / len(src)
    scale = (sig * np.diag(sign)).sum() / var_s if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def alignment_matrix(landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """The 2x3 warp taking the image to the aligned ``size`` x ``size`` crop."""
    template = ARCFACE_TEMPLATE * (size / ALIGNED_SIZE)
    return similarity_transform(np.asarray(landmarks, dtype=np.float64).reshape(5, 2), template)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Warp the face with these 5 landmarks to an aligned ``size`` x ``size`` BGR crop."""
    m = alignment_matrix(landmarks, size)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def align_faces(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Aligned crops for several faces, stacked as ``(N, size, size, 3)``."""
    lms = np.asarray(landmarks).reshape(-1, 5, 2)
    if len(lms) == 0:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.stack([align_face(image, lm, size) for lm in lms])

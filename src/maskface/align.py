"""Face alignment: a 5-point similarity warp to 112x112, one crop for the whole project.

The crop is the ArcFace/InsightFace convention (also SFace's ``alignCrop``); every embedder
takes it. A model trained on another template (``face-reidentification-retail-0095``) gets its
crop from this one with :func:`template_warp`, a similarity from the ArcFace template onto its
own, so the pipeline still aligns each face once.
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

#: Open Model Zoo ``face-reidentification-retail-0095``'s template for a 128x128 crop (its model
#: description's normalised points x128: the 96x112 SphereFace reference scaled per axis)
REID0095_TEMPLATE = np.array(
    [
        [0.31556875, 0.46157411],
        [0.68262292, 0.46157411],
        [0.50026250, 0.64050536],
        [0.34947188, 0.82469196],
        [0.65343646, 0.82469196],
    ],
    dtype=np.float32,
) * 128


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


def alignment_matrix(landmarks: np.ndarray, size: int = ALIGNED_SIZE,
                     template: np.ndarray | None = None) -> np.ndarray:
    """The 2x3 warp taking the image to the aligned ``size`` x ``size`` crop (``template``:
    reference points in that crop's pixels; default the ArcFace template scaled to ``size``)."""
    if template is None:
        template = ARCFACE_TEMPLATE * (size / ALIGNED_SIZE)
    return similarity_transform(np.asarray(landmarks, dtype=np.float64).reshape(5, 2), template)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE,
               template: np.ndarray | None = None) -> np.ndarray:
    """Warp the face with these 5 landmarks to an aligned ``size`` x ``size`` BGR crop."""
    m = alignment_matrix(landmarks, size, template)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def template_warp(template: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 similarity taking the 112x112 ArcFace crop to a ``size`` crop aligned on another
    ``template`` (for a model trained on its own reference points)."""
    return similarity_transform(ARCFACE_TEMPLATE, template)


def realign(crops: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """``(N, 112, 112, 3)`` ArcFace crops re-warped to ``(N, size, size, 3)`` crops on
    ``template`` (one similarity for all, computed once)."""
    m = template_warp(template, size)
    return np.stack([cv2.warpAffine(c, m, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE) for c in crops])


def align_faces(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Aligned crops for several faces, stacked as ``(N, size, size, 3)``."""
    lms = np.asarray(landmarks).reshape(-1, 5, 2)
    if len(lms) == 0:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.stack([align_face(image, lm, size) for lm in lms])

"""Masked faces re-aligned before they are embedded.

A detector can only guess the nose and mouth corners under a mask, so a masked face's aligned
crop is off by a few pixels, which costs recognition 2-3 points of pair accuracy. The
``masked_alignment`` model (``maskface train alignment``) reads the crop and gives the five
landmarks where they really are; the crop is warped once more onto the template from them.
Faces not flagged masked are never touched, so unmasked vectors stay exactly as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from maskface.align import ALIGNED_SIZE, ARCFACE_TEMPLATE, alignment_matrix
from maskface.recognize.base import Embedder
from maskface.recognize.onnx_embedder import BatchedSession, reid0095_input

MODEL = "masked_alignment"
#: a correction is applied only within these bounds (scale, degrees, pixels of shift on the
#: 112-px crop), which hold 4,987 of 5,000 synthetic masked crops and all of 120 real ones
#: (dataroots, with_mask, 64 px and more);
#: outside them the model is out of its depth and the detector's alignment is kept
MAX_SCALE_CHANGE, MAX_ROTATION_DEG, MAX_SHIFT_PX = 1.33, 20.0, 24.0


class MaskedRealigner:
    """Landmarks of masked faces from their aligned crops, and the crops re-aligned on them."""

    def __init__(self, model: str | Path = MODEL, threads: int | None = None,
                 batch_size: int = 32):
        self._net = BatchedSession(model, threads, batch_size)

    def landmarks(self, crops: np.ndarray) -> np.ndarray:
        """Five landmarks ``(N, 5, 2)`` in the pixels of ``(N, 112, 112, 3)`` aligned crops."""
        offsets = self._net.run(reid0095_input(crops))
        return ARCFACE_TEMPLATE[None] + offsets.reshape(-1, 5, 2)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """The crops warped onto the template from their predicted landmarks (a crop whose
        correction is implausibly large is returned as it was)."""
        if len(crops) == 0:
            return crops
        size = (ALIGNED_SIZE, ALIGNED_SIZE)
        out = crops.copy()
        for i, lm in enumerate(self.landmarks(crops)):
            m = alignment_matrix(lm)
            if plausible(m):
                out[i] = cv2.warpAffine(crops[i], m, size, flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE)
        return out


def plausible(m: np.ndarray) -> bool:
    """Whether a 2x3 similarity re-warp of an aligned crop is a correction, not a new face."""
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    angle = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    centre = np.array([ALIGNED_SIZE / 2, ALIGNED_SIZE / 2])
    shift = float(np.linalg.norm(m[:, :2] @ centre + m[:, 2] - centre))
    return (1 / MAX_SCALE_CHANGE <= scale <= MAX_SCALE_CHANGE
            and abs(angle) <= MAX_ROTATION_DEG and shift <= MAX_SHIFT_PX)


class RealignedEmbedder(Embedder):
    """An embedder whose masked faces are re-aligned first (:class:`MaskedRealigner`) and, with
    ``mirror``, embedded as the mean of it and its mirror image, each re-aligned; the vectors
    stay in the wrapped embedder's space (same name, dim, weighting).

    The mirror mean is for masked faces only, where the landmarks are a guess: the mirror image
    gives a second landmark reading and a second crop, and their mean was measured to help
    (docs/recognition.md); unmasked faces keep the wrapped embedder's exact vectors.
    """

    realigns_masked = True

    def __init__(self, inner: Embedder, realigner: MaskedRealigner, mirror: bool = True):
        self.inner, self.realigner, self.mirror = inner, realigner, mirror
        self.name, self.dim = inner.name, inner.dim
        self.metadata = getattr(inner, "metadata", {})

    @property
    def label(self) -> str:
        return f"{self.inner.label}+realigned" + ("+mirrored" if self.mirror else "")

    @property
    def parts(self) -> tuple[Embedder, ...]:
        return getattr(self.inner, "parts", ())

    def _embed(self, faces: np.ndarray) -> np.ndarray:
        return self.inner._embed(faces)

    def _embed_with_state(self, faces: np.ndarray, masked: np.ndarray | None) -> np.ndarray:
        if masked is None or not masked.any():
            return self.inner._embed_with_state(faces, masked)
        faces = faces.copy()
        m = faces[masked]
        if not self.mirror:
            faces[masked] = self.realigner(m)
            return self.inner._embed_with_state(faces, masked)
        # the mirror image is re-aligned on its own: two landmark readings, two crops
        both = self.realigner(np.concatenate([m, m[:, :, ::-1]]))
        faces[masked] = both[: len(m)]
        n = len(faces)  # one batch for faces and mirror images
        out = self.inner._embed_with_state(np.concatenate([faces, both[len(m):]]),
                                           np.concatenate([masked, np.ones(len(m), bool)]))
        res = out[:n]
        res[masked] = self.inner._mean(res[masked], out[n:])
        return res

    def _mean(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.inner._mean(a, b)

    def weigh(self, queries: np.ndarray, masked: Sequence[bool] | None = None) -> np.ndarray:
        return self.inner.weigh(queries, masked)

"""The embedder interface: aligned faces in, unit-length identity vectors out."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from maskface.align import ALIGNED_SIZE
from maskface.errors import InputError


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


class Embedder(ABC):
    """Maps aligned 112x112 BGR faces (``maskface.align``'s ArcFace template) to embeddings.

    Subclasses load their model once in ``__init__``; :meth:`embed` is batched. Two faces are
    compared by the dot product of their embeddings (cosine similarity, in [-1, 1]).
    """

    #: registry/model name stored beside every gallery embedding
    name: str = "embedder"
    #: embedding dimension
    dim: int = 0

    @abstractmethod
    def _embed(self, faces: np.ndarray) -> np.ndarray:
        """Raw (unnormalised) embeddings of a non-empty ``(N, 112, 112, 3)`` uint8 batch."""

    def embed(self, aligned_faces: np.ndarray) -> np.ndarray:
        """Unit-length embeddings ``(N, dim)`` float32 of ``(N, 112, 112, 3)`` BGR uint8 faces."""
        faces = np.asarray(aligned_faces)
        if faces.ndim == 3:
            faces = faces[None]
        if faces.ndim != 4 or faces.shape[1:] != (ALIGNED_SIZE, ALIGNED_SIZE, 3):
            raise InputError(
                f"embedder expects aligned faces of shape (N, {ALIGNED_SIZE}, {ALIGNED_SIZE}, 3),"
                f" got {faces.shape}"
            )
        if len(faces) == 0:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self._embed(faces.astype(np.uint8, copy=False)))

    def __call__(self, aligned_faces: np.ndarray) -> np.ndarray:
        return self.embed(aligned_faces)

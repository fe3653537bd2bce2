"""The embedder interface: aligned faces in, unit-length identity vectors out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

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

    #: name of the embedding space, stored beside every gallery embedding: only vectors of
    #: the same space are compared
    name: str = "embedder"
    #: embedding dimension
    dim: int = 0
    #: whether faces flagged masked are re-aligned before embedding (:mod:`.realign`)
    realigns_masked: bool = False

    @property
    def label(self) -> str:
        """What made the vectors, for reports (differs from :attr:`name` for variants that
        share another model's space)."""
        return self.name

    @abstractmethod
    def _embed(self, faces: np.ndarray) -> np.ndarray:
        """Raw (unnormalised) embeddings of a non-empty ``(N, 112, 112, 3)`` uint8 batch."""

    def _embed_with_state(self, faces: np.ndarray, masked: np.ndarray | None) -> np.ndarray:
        """Mask-aware embedders override this; the others ignore the mask state."""
        return self._embed(faces)

    def embed(self, aligned_faces: np.ndarray, masked: Sequence[bool] | None = None
              ) -> np.ndarray:
        """Unit-length embeddings ``(N, dim)`` float32 of ``(N, 112, 112, 3)`` BGR uint8 faces.

        ``masked`` (one flag per face, e.g. from the mask classifier) lets a mask-aware
        embedder treat masked faces differently; plain embedders ignore it.
        """
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
        flags = None if masked is None else np.asarray(masked, bool).reshape(-1)
        if flags is not None and len(flags) != len(faces):
            raise InputError(f"{len(flags)} mask flags for {len(faces)} faces")
        return l2_normalize(self._embed_with_state(faces.astype(np.uint8, copy=False), flags))

    def _mean(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """One raw embedding from two of the same faces (a face and its mirror image): the
        sum of their directions (a fused space averages each backbone's part on its own)."""
        return l2_normalize(a) + l2_normalize(b)

    def weigh(self, queries: np.ndarray, masked: Sequence[bool] | None = None) -> np.ndarray:
        """Probe vectors as the gallery should score them: unchanged for a single backbone
        (:class:`maskface.recognize.fusion.FusedEmbedder` weights its parts by mask state)."""
        return np.atleast_2d(np.asarray(queries, dtype=np.float32))

    def __call__(self, aligned_faces: np.ndarray, masked: Sequence[bool] | None = None
                 ) -> np.ndarray:
        return self.embed(aligned_faces, masked)


class MaskAwareEmbedder(Embedder):
    """A base embedder for unmasked faces and an adapter trained for masked faces that maps
    them into the *same* space (distilled to the base's embeddings of unmasked photos).

    Unmasked faces get exactly the base's vectors, so nothing is lost on them and galleries
    made with the base stay valid; faces flagged masked go through the adapter.
    """

    def __init__(self, base: Embedder, adapter: Embedder, label: str):
        if adapter.dim != base.dim:
            raise InputError(f"adapter makes {adapter.dim}-d vectors, base {base.dim}-d")
        self.base, self.adapter = base, adapter
        self.name, self.dim = base.name, base.dim
        self._label = label
        self.metadata = getattr(base, "metadata", {})

    @property
    def label(self) -> str:
        return self._label

    def _embed(self, faces: np.ndarray) -> np.ndarray:
        return self.base._embed(faces)

    def _embed_with_state(self, faces: np.ndarray, masked: np.ndarray | None) -> np.ndarray:
        if masked is None or not masked.any():
            return self.base._embed(faces)
        out = np.zeros((len(faces), self.dim), np.float32)
        out[masked] = self.adapter._embed(faces[masked])
        if (~masked).any():
            out[~masked] = self.base._embed(faces[~masked])
        return out

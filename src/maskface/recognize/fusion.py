"""Score-level fusion of two backbones, weighted by the probe's mask state, as one embedding.

A stored (gallery) vector is ``[e1, e2] / sqrt(2)`` (each backbone's unit vector), so the plain
dot product of two stored vectors is the mean of the two cosines. :meth:`FusedEmbedder.weigh`
turns a probe's vector into one whose dot product with any stored vector is
``w * cos1 + (1 - w) * cos2``, ``w`` chosen by the probe's mask state; ``w = 1`` is the first
backbone alone, exactly. Galleries, indexes and search stay unchanged (one vector per face).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from maskface.errors import InputError
from maskface.recognize.base import Embedder, l2_normalize


class FusedEmbedder(Embedder):
    """Two embedders fused at score level, with a weight per probe mask state.

    Args:
        first, second: the backbones (either may be mask-aware: both get the mask flags).
        weight_unmasked, weight_masked: ``first``'s share of the score for unmasked and masked
            probes (fitted on validation identities; ``scripts/fit_fusion.py``).
    """

    def __init__(self, first: Embedder, second: Embedder, weight_unmasked: float,
                 weight_masked: float, label: str | None = None):
        for w in (weight_unmasked, weight_masked):
            if not 0.0 <= w <= 1.0:
                raise InputError(f"fusion weight {w} is outside [0, 1]")
        self.first, self.second = first, second
        self.name = f"{first.name}+{second.name}"
        self.dim = first.dim + second.dim
        self.weights = {False: float(weight_unmasked), True: float(weight_masked)}
        self._label = label or f"fused({first.label} {weight_unmasked:g}/{weight_masked:g}, " \
            f"{second.label})"
        self.metadata = {}

    @property
    def label(self) -> str:
        return self._label

    @property
    def parts(self) -> tuple[Embedder, Embedder]:
        """The two backbones (``maskface bench`` times each)."""
        return self.first, self.second

    def _embed(self, faces: np.ndarray) -> np.ndarray:
        return self._embed_with_state(faces, None)

    def _embed_with_state(self, faces: np.ndarray, masked: np.ndarray | None) -> np.ndarray:
        a = l2_normalize(self.first._embed_with_state(faces, masked))
        b = l2_normalize(self.second._embed_with_state(faces, masked))
        return np.concatenate([a, b], axis=1)  # embed() scales it to unit length: / sqrt(2)

    def _mean(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = self.first.dim  # each backbone's part stays unit length, so weigh() holds
        return np.concatenate([l2_normalize(a[:, :d] + b[:, :d]),
                               l2_normalize(a[:, d:] + b[:, d:])], axis=1)

    def weigh(self, queries: np.ndarray, masked: Sequence[bool] | None = None) -> np.ndarray:
        """Probe vectors (from :meth:`embed`) reweighted by mask state: their dot product with
        a stored vector is ``w * cos1 + (1 - w) * cos2``."""
        q = np.array(np.atleast_2d(queries), dtype=np.float32)
        flags = np.zeros(len(q), bool) if masked is None else np.asarray(masked, bool)
        w = np.where(flags, self.weights[True], self.weights[False]).astype(np.float32)[:, None]
        d = self.first.dim
        q[:, :d] *= 2 * w
        q[:, d:] *= 2 * (1 - w)
        return q

"""Recognition stage of the pipeline: embeds each face and matches it against a gallery."""

from __future__ import annotations

import numpy as np

from maskface.align import align_faces
from maskface.gallery import Gallery
from maskface.recognize.base import Embedder
from maskface.results import Face, Identity


class Recognizer:
    """Fills ``face.embedding`` and ``face.identity`` for every face of an image, batched.

    Args:
        embedder: the embedding model (see :func:`maskface.recognize.create_embedder`).
        gallery: enrolled people; without one, only embeddings are filled.
        threshold: open-set cosine threshold; below it a face is unknown. Defaults to the
            embedder's calibrated threshold.
    """

    def __init__(self, embedder: Embedder, gallery: Gallery | None = None,
                 threshold: float | None = None):
        from maskface.recognize import default_threshold

        self.embedder = embedder
        self.gallery = gallery
        self.threshold = default_threshold(embedder) if threshold is None else threshold

    def embed(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        """Embeddings ``(N, dim)`` of the faces (aligned by their landmarks); also stored on
        each face."""
        if not faces:
            return np.zeros((0, self.embedder.dim), np.float32)
        aligned = align_faces(image, np.stack([f.landmarks for f in faces]))
        # A mask-aware embedder treats covered faces differently; the pipeline's classifier
        # has set face.mask by now (a mask pulled under the nose still hides the mouth).
        masked = [f.mask is not None and f.mask.label != "without_mask" for f in faces]
        emb = self.embedder.embed(aligned, masked)
        for face, e in zip(faces, emb):
            face.embedding = e
        return emb

    def identify(self, image: np.ndarray, faces: list[Face]) -> None:
        """The pipeline hook: embed every face and set its :class:`Identity`."""
        emb = self.embed(image, faces)
        if self.gallery is None or not faces:
            return
        for face, m in zip(faces, self.gallery.identify(emb, self.threshold)):
            face.identity = Identity(m.person_id, m.name, float(m.score))

"""Recognition stage of the pipeline: embeds each face and matches it against a gallery."""

from __future__ import annotations

import logging

import numpy as np

from maskface.align import align_faces
from maskface.gallery import Gallery
from maskface.recognize.base import Embedder
from maskface.results import Face, Identity, is_masked

log = logging.getLogger(__name__)


class Recognizer:
    """Fills ``face.embedding`` and ``face.identity`` for every face of an image, batched.

    Args:
        embedder: the embedding model (see :func:`maskface.recognize.create_embedder`).
        gallery: enrolled people; without one, only embeddings are filled.
        threshold: open-set cosine threshold for every condition; below it a face is unknown.
            By default each comparison condition (unmasked/masked probe and template) has its
            own threshold (``maskface.gallery.thresholds``: the gallery's calibration, else the
            model's), falling back to the embedder's single calibrated threshold.
    """

    def __init__(self, embedder: Embedder, gallery: Gallery | None = None,
                 threshold: float | None = None):
        from maskface.recognize import default_threshold, fusion_config

        self.embedder = embedder
        self.gallery = gallery
        self.threshold = default_threshold(embedder) if threshold is None else threshold
        self._fixed = threshold is not None
        self.template_weight = fusion_config().get("template_weight")
        stale = gallery.templates_not_realigned() if gallery and embedder.realigns_masked else 0
        if stale:
            log.warning("%d masked templates in %s were made before masked faces were "
                        "re-aligned: 'maskface people remask' makes them again from the "
                        "enrolment photos still on disk (others: enrol the photos again)", stale,
                        gallery.db.location)

    def embed(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        """Embeddings ``(N, dim)`` of the faces (aligned by their landmarks); also stored on
        each face."""
        if not faces:
            return np.zeros((0, self.embedder.dim), np.float32)
        aligned = align_faces(image, np.stack([f.landmarks for f in faces]))
        # A mask-aware embedder treats covered faces differently; the pipeline's classifier
        # has set face.mask by now (a mask pulled under the nose still hides the mouth).
        masked = self._masked(faces)
        emb = self.embedder.embed(aligned, masked)
        for face, e in zip(faces, emb):
            face.embedding = e
        return emb

    @staticmethod
    def _masked(faces: list[Face]) -> list[bool]:
        return [is_masked(f) for f in faces]

    def identify(self, image: np.ndarray, faces: list[Face]) -> None:
        """The pipeline hook: embed every face and set its :class:`Identity` (a masked face is
        matched against masked templates, at its condition's threshold)."""
        from maskface.gallery.thresholds import thresholds_for

        emb = self.embed(image, faces)
        if self.gallery is None or not faces:
            return
        masked = self._masked(faces)
        per_condition = None if self._fixed else thresholds_for(self.gallery, self.threshold)
        matches = self.gallery.identify(self.embedder.weigh(emb, masked), self.threshold,
                                        masked=masked, thresholds=per_condition,
                                        template_weight=self.template_weight)
        for face, m in zip(faces, matches):
            face.identity = Identity(m.person_id, m.name, float(m.score), m.threshold,
                                     m.condition)

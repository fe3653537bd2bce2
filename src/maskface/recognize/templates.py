"""Masked enrolment templates: synthetic masked copies of an unmasked enrolment photo.

At enrolment each unmasked photo also yields :data:`N_TEMPLATES` masked copies drawn by
:mod:`maskface.synth` (one mask type each, colour and texture seeded by the photo's pixels, so
the same photo always gives the same templates). Their embeddings are stored flagged
``masked`` beside the photo's own, and a masked probe at the door is compared with them
(:meth:`maskface.gallery.Gallery.identify`): a masked face against masked faces, not against a
face whose mouth and nose the probe hides.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np

from maskface.align import align_face
from maskface.errors import MaskfaceError
from maskface.results import Face

log = logging.getLogger(__name__)

#: masked copies per unmasked enrolment photo, one mask type each
TEMPLATE_TYPES = ("surgical", "cloth", "kn95")
N_TEMPLATES = len(TEMPLATE_TYPES)
#: ``source`` prefix of a synthetic template's gallery row
SOURCE_PREFIX = "synthetic-mask:"
#: suffix of the mask type in the ``source`` of a template embedded re-aligned (templates made
#: before masked faces were re-aligned lack it: ``maskface people remask`` makes them again)
REALIGNED_TAG = "/realigned"


def photo_seed(image: np.ndarray, seed: int = 0) -> int:
    """A seed drawn from the photo's pixels (a subsample), so templates are reproducible."""
    return zlib.crc32(np.ascontiguousarray(image[::7, ::7]).tobytes(), seed) & 0x7FFFFFFF


def masked_copies(image: np.ndarray, face: Face, n: int = N_TEMPLATES, seed: int = 0
                  ) -> list[tuple[str, np.ndarray]]:
    """Up to ``n`` ``(mask type, image)`` copies of the photo with a mask drawn on ``face``.

    Empty when the landmarker finds no dense landmarks in the face's box (the face then has
    no templates; the reason is logged).
    """
    from maskface.synth import apply_mask, random_style

    rng = np.random.default_rng(photo_seed(image, seed))
    out = []
    for k in range(n):
        kind = TEMPLATE_TYPES[k % len(TEMPLATE_TYPES)]
        try:
            out.append((kind, apply_mask(image, face, random_style(rng, types=(kind,)))))
        except MaskfaceError as exc:
            log.info("no masked templates for this photo: %s", exc)
            return []
    return out


def _landmarks(image: np.ndarray, face: Face, detector) -> np.ndarray:
    """The masked copy's landmarks as the door would find them: detected on the masked face
    (the detector places a masked face's points differently), else the unmasked face's."""
    if detector is None:
        return face.landmarks
    from maskface.geometry import iou_matrix

    det = detector.detect(image)
    if len(det) == 0:
        return face.landmarks
    overlap = iou_matrix(np.asarray(face.box, np.float32)[None], det.boxes)[0]
    best = int(np.argmax(overlap))
    return det.landmarks[best] if overlap[best] >= 0.5 else face.landmarks


def template_crops(image: np.ndarray, face: Face, n: int = N_TEMPLATES, seed: int = 0,
                   detector=None) -> tuple[np.ndarray, list[str]]:
    """Aligned 112x112 crops of the masked copies and their mask types.

    With a ``detector`` each copy is aligned on the landmarks detected on the masked face (how
    a masked probe is aligned at the door: measured better on validation identities), else on
    the unmasked face's landmarks.
    """
    copies = masked_copies(image, face, n, seed)
    if not copies:
        return np.zeros((0, 112, 112, 3), np.uint8), []
    return (np.stack([align_face(img, _landmarks(img, face, detector)) for _, img in copies]),
            [kind for kind, _ in copies])


def template_embeddings(embedder, image: np.ndarray, face: Face, source: str | None = None,
                        n: int = N_TEMPLATES, seed: int = 0, detector=None
                        ) -> tuple[np.ndarray, list[str]]:
    """Embeddings (as masked faces) of an unmasked photo's masked templates, and the ``source``
    of each for the gallery (``synthetic-mask:<type>[/realigned]:<photo>``)."""
    crops, kinds = template_crops(image, face, n, seed, detector)
    if not kinds:
        return np.zeros((0, embedder.dim), np.float32), []
    emb = embedder.embed(crops, [True] * len(crops))
    tag = REALIGNED_TAG if embedder.realigns_masked else ""
    return emb, [f"{SOURCE_PREFIX}{k}{tag}:{source or ''}" for k in kinds]


def with_templates(emb: np.ndarray, flags, sources, templates
                   ) -> tuple[np.ndarray, list[bool], list[str | None]]:
    """Gallery rows: the photos' embeddings (``flags``: masked, ``sources``) followed by their
    masked templates (``templates``: per photo ``(embeddings, sources)`` as from
    :func:`template_embeddings`, or ``None``), each template flagged masked."""
    rows, fl, src = [np.asarray(emb)], list(flags), list(sources)
    for t in templates or []:
        if t is not None and len(t[0]):
            rows.append(np.asarray(t[0]))
            fl += [True] * len(t[0])
            src += list(t[1])
    return np.concatenate(rows), fl, src

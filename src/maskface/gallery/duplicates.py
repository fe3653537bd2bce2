"""The duplicate check at enrolment: is a new photo's face already enrolled as someone else?

An access system must never hold one person under two identities: the next access check would
match whichever of the two scores higher and the event log would name the wrong person. So
before anything is stored, the new photos are searched in the gallery with the operating
threshold of the door, and a match is refused unless an admin overrides it explicitly (and the
override is recorded in the gallery's audit log, see :meth:`Gallery.enroll`). The check and
the write are one step (:func:`store_unless_duplicate`): two enrolments of the same face at
once, on one server or several, cannot both pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from maskface.gallery.store import Gallery, GalleryChangedError, GalleryError

T = TypeVar("T")

#: audit actions recorded when an admin lets a duplicate through
ENROL_OVERRIDE = "enrol_duplicate_override"
ADD_PHOTOS_OVERRIDE = "add_photos_duplicate_override"


@dataclass(frozen=True)
class Duplicate:
    """An enrolled person that a new photo matches: ``photo`` is its 0-based index."""

    person_id: int
    name: str
    score: float
    threshold: float
    photo: int

    def to_dict(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "name": self.name, "score": round(self.score, 4),
                "threshold": round(self.threshold, 4), "photo": self.photo + 1}

    def message(self, photo: str | None = None) -> str:
        """One line for the user: which photo (``photo``, default "photo N") matched whom, how
        well, and what to do."""
        photo = photo or f"photo {self.photo + 1}"
        return (f"{photo} matches {self.name!r} (id {self.person_id}) at score "
                f"{self.score:.3f} (threshold {self.threshold:.3f}): this face is already "
                "enrolled; add the photos to that person, or override if they really are "
                "different people")


def duplicate_threshold(gallery: Gallery, base: float | None, probe_masked: bool) -> float:
    """The score at which a new photo counts as an already enrolled person.

    ``base`` (a site policy's match threshold) overrides every condition, as it does at the
    door; otherwise the door's per-condition threshold for a probe of this mask state
    (:func:`maskface.gallery.thresholds.operating_threshold`), the lower of its two template
    conditions, since a person's best match may be a masked or an unmasked template.
    """
    if base is not None:
        return float(base)
    from maskface.gallery.thresholds import operating_threshold

    return min(operating_threshold(gallery, probe_masked, t) for t in (False, True))


def find_duplicate(gallery: Gallery, embeddings: np.ndarray, masked: Sequence[bool],
                   base_threshold: float | None, exclude: int | None = None
                   ) -> Duplicate | None:
    """The best match above threshold among enrolled people other than ``exclude``, or None.

    Args:
        embeddings: ``(N, D)`` embeddings of the new photos, as the embedder weighs probes
            (``Embedder.weigh``).
        masked: whether each new photo's face wears a mask (picks its threshold).
        base_threshold: a policy threshold overriding the per-condition ones, or None (see
            :func:`duplicate_threshold`).
        exclude: the person the photos are being added to (their own photos may match).
    """
    emb = np.atleast_2d(np.asarray(embeddings, np.float32))
    if len(emb) == 0 or len(gallery) == 0:
        return None
    scores, ids = gallery.search(emb, k=2)  # k=2: one left after excluding the person
    best: Duplicate | None = None
    for i, (srow, irow) in enumerate(zip(scores, ids)):
        thr = duplicate_threshold(gallery, base_threshold, bool(masked[i]))
        for s, pid in zip(srow.tolist(), irow.tolist()):
            if pid < 0 or pid == exclude:
                continue
            if s >= thr and (best is None or s > best.score):
                best = Duplicate(int(pid), gallery.get(int(pid)).name, float(s), thr, i)
            break  # rows are best first: the first other person is this photo's best
    return best


def store_unless_duplicate(gallery: Gallery, embeddings: np.ndarray, masked: Sequence[bool],
                           base_threshold: float | None,
                           store: Callable[[Duplicate | None, int], T],
                           exclude: int | None = None, attempts: int = 5) -> T:
    """The duplicate check and the write as one step.

    Reads the gallery's version, runs :func:`find_duplicate` (arguments as there), and calls
    ``store(duplicate_or_None, version)``, which decides (refuses, or records an override) and
    writes with ``expect_version=version``. If another enrolment committed in between, the
    write raises :class:`GalleryChangedError` without writing, and the check runs again on the
    new gallery: a face enrolled by a concurrent request is seen before this one is stored.
    """
    for _ in range(attempts):
        version = gallery.version()  # before the search: a later write fails the version check
        dup = find_duplicate(gallery, embeddings, masked, base_threshold, exclude=exclude)
        try:
            return store(dup, version)
        except GalleryChangedError:
            continue
    raise GalleryError(f"the gallery changed {attempts} times during this enrolment "
                       "(many enrolments at once); try again")

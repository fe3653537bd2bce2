"""Typed results: one :class:`Result` per image, one :class:`Face` per detected face."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maskface.jsonfile import dumps

#: mask labels, in the classifier's output order for the three-class model
MASK_LABELS = ("with_mask", "without_mask", "mask_incorrect")

#: labels under which recognition treats a face as masked (a mask pulled under the nose still
#: hides the mouth): its embedding, templates and threshold condition
MASKED_LABELS = ("with_mask", "mask_incorrect")


@dataclass(frozen=True)
class MaskPrediction:
    """Mask state of one face: the winning label, its probability and all class probabilities."""

    label: str
    probability: float
    probabilities: dict[str, float] = field(default_factory=dict)

    @property
    def compliant(self) -> bool:
        """Worn properly (``with_mask``): what a door requires. Recognition's notion of a
        masked face is wider (:func:`is_masked`: a mask under the nose still hides the mouth)."""
        return self.label == "with_mask"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "probability": round(float(self.probability), 4),
            "probabilities": {k: round(float(v), 4) for k, v in self.probabilities.items()},
        }


@dataclass(frozen=True)
class Identity:
    """Who the face belongs to; ``person_id`` is ``None`` for an unknown face."""

    person_id: int | None
    name: str | None
    score: float
    #: the operating threshold the score was judged against, and its comparison condition
    #: (``maskface.gallery.thresholds``), when known
    threshold: float | None = None
    condition: str | None = None

    @property
    def known(self) -> bool:
        return self.person_id is not None

    def to_dict(self) -> dict[str, Any]:
        d = {"person_id": self.person_id, "name": self.name,
             "score": round(float(self.score), 4)}
        if self.threshold is not None:
            d.update(threshold=round(float(self.threshold), 4), condition=self.condition)
        return d


@dataclass(frozen=True)
class Liveness:
    """Presentation-attack check of one face: ``score`` is the mean live probability of the
    MiniFASNet pair (0..1), ``label`` is ``live`` when it reaches the threshold, else ``spoof``;
    ``unknown`` with a ``problem`` (``grey_frame``) when the score cannot be trusted."""

    score: float
    label: str
    threshold: float
    problem: str | None = None

    @property
    def live(self) -> bool:
        return self.label == "live"

    def to_dict(self) -> dict[str, Any]:
        d = {"score": round(float(self.score), 4), "label": self.label,
             "threshold": self.threshold}
        if self.problem:
            d["problem"] = self.problem
        return d


@dataclass(frozen=True)
class Quality:
    """How usable one face is for a decision: 0..1 overall ``score`` from its parts, and the
    problems (``too_small``, ``blurred``, ``turned_away``, ``too_dark``, ``too_bright``,
    ``out_of_frame``)."""

    score: float
    size: float
    sharpness: float
    frontal: float
    exposure: float
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"score": round(float(self.score), 4), "size": round(float(self.size), 1),
                "sharpness": round(float(self.sharpness), 1),
                "frontal": round(float(self.frontal), 3),
                "exposure": round(float(self.exposure), 1), "problems": list(self.problems)}


@dataclass
class Face:
    """One detected face: box ``(x1, y1, x2, y2)`` in pixels, detector score, 5 landmarks
    (right eye, left eye, nose tip, right and left mouth corners, as seen in the image), and the
    attributes later stages fill in."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    mask: MaskPrediction | None = None
    identity: Identity | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    track_id: int | None = None
    liveness: Liveness | None = None
    quality: Quality | None = None

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "mask": self.mask.to_dict() if self.mask else None,
            "identity": self.identity.to_dict() if self.identity else None,
        }
        if self.track_id is not None:
            d["track_id"] = self.track_id
        if self.liveness is not None:
            d["liveness"] = self.liveness.to_dict()
        if self.quality is not None:
            d["quality"] = self.quality.to_dict()
        return d


def is_masked(face: Face) -> bool:
    """Whether recognition treats ``face`` as masked (classified, label in MASKED_LABELS)."""
    return face.mask is not None and face.mask.label in MASKED_LABELS


@dataclass
class Result:
    """All faces found in one image, plus the image itself for plotting."""

    faces: list[Face]
    image: np.ndarray = field(repr=False)
    #: the path analysed, or ``"<image>"`` (bytes, arrays, PIL images), ``"<frame>"`` (video)
    source: str = "<image>"
    timings_ms: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self):
        return iter(self.faces)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    def to_dict(self) -> dict[str, Any]:
        h, w = self.shape
        return {
            "source": self.source,
            "width": w,
            "height": h,
            "faces": [f.to_dict() for f in self.faces],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Strict JSON (what :func:`maskface.jsonfile.write_json` writes to files)."""
        return dumps(self.to_dict(), indent=indent)

    def plot(self) -> np.ndarray:
        """A copy of the image (BGR) with boxes and labels drawn on it."""
        from maskface.draw import annotate

        return annotate(self.image, self.faces)

    def save(self, path: str | Path) -> Path:
        """Write the annotated image to ``path`` (format from the suffix: .jpg, .png, …),
        creating its folder; :class:`~maskface.errors.InputError` for a path that cannot be
        written."""
        from maskface.draw import write_image

        return write_image(path, self.plot())

"""People enrolled in the gallery (``maskface.gallery``), as the API shows them.

Groups live in the person's gallery metadata (``{"groups": [...]}``) so one row holds everything
about a person and deleting them erases it all.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maskface.gallery import (
    DuplicateNameError,
    Gallery,
    Person,
    UnknownPersonError,
    store_unless_duplicate,
)
from maskface.gallery.duplicates import ADD_PHOTOS_OVERRIDE, ENROL_OVERRIDE
from maskface.results import Face, Identity, is_masked
from maskface.service.engine import Engine
from maskface.service.errors import ApiError
from maskface.storage import Database


def _person(p: Person) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "groups": list(p.metadata.get("groups", [])),
            "created_at": p.created_at, "photos": p.n_embeddings - p.n_templates,
            "masked_photos": p.n_masked - p.n_templates, "masked_templates": p.n_templates}


class _PoolDetector:
    """The engine's detector behind its worker pool (thread-safe), as ``detect(image)``."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def detect(self, image: np.ndarray):
        faces = self.engine.analyze(image, embed=False).faces
        boxes = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
        lms = np.array([f.landmarks for f in faces], np.float32).reshape(-1, 5, 2)
        return _Detections(boxes, lms)


class _Detections:
    def __init__(self, boxes: np.ndarray, landmarks: np.ndarray):
        self.boxes, self.landmarks = boxes, landmarks

    def __len__(self) -> int:
        return len(self.boxes)


class People:
    """Enrol, list, rename, delete and identify, over one gallery file."""

    def __init__(self, db: Database | str | Path, engine: Engine):
        self.engine = engine
        self.gallery = Gallery(db, model=engine.embedder.name, dim=engine.embedder.dim)
        from maskface.recognize import fusion_config

        self.template_weight = fusion_config().get("template_weight")

    def _get(self, person_id: int) -> Person:
        try:
            return self.gallery.get(int(person_id))
        except UnknownPersonError:
            raise ApiError(404, "person_not_found", f"no person with id {person_id}") from None

    def count(self) -> int:
        return len(self.gallery)

    def thresholds(self, policy_threshold: float | None = None) -> dict[str, Any]:
        """The match threshold of each comparison condition in force, and its source."""
        from maskface.gallery.thresholds import CONDITIONS, threshold_source, thresholds_for

        if policy_threshold is not None:  # the policy's one threshold overrides every one
            return {**dict.fromkeys(CONDITIONS, policy_threshold), "source": "policy"}
        return {**thresholds_for(self.gallery, self.engine.threshold),
                "source": threshold_source(self.gallery)}

    def list(self, limit: int | None = None, offset: int = 0,
             name_contains: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """A page of people by id, and how many match in all."""
        return ([_person(p) for p in self.gallery.people(limit, offset, name_contains)],
                self.gallery.count_people(name_contains))

    def get(self, person_id: int) -> dict[str, Any]:
        return _person(self._get(person_id))

    def groups_of(self, person_id: int) -> list[str]:
        return self._get(person_id).groups

    def check_name_free(self, name: str) -> None:
        """409 ``duplicate_name`` if someone is enrolled under ``name``."""
        if name in {p.name for p in self.gallery.people()}:
            raise ApiError(409, "duplicate_name", f"'{name}' is already enrolled; add photos to "
                           "that person or choose another name")

    def _probes(self, faces: Sequence[Face]) -> tuple[np.ndarray, list[bool]]:
        """The photos' embeddings as the door scores probes, and their mask states."""
        masked = [is_masked(f) for f in faces]
        return self.engine.embedder.weigh(np.stack([f.embedding for f in faces]), masked), masked

    @staticmethod
    def _decide(dup, allow: bool, action: str, actor: str | None):
        """409 ``already_enrolled`` for a match with someone else enrolled (at the policy's
        threshold, else its condition's); with ``allow``, the audit record ``(action,
        details)`` to store beside the photos (None if no match)."""
        if dup is None:
            return None
        if not allow:
            raise ApiError(409, "already_enrolled", f"{dup.message()} (allow_duplicate=true)")
        return action, {"matched": dup.to_dict(), "by": actor, "via": "api"}

    def masked_templates(self, image: np.ndarray, face: Face
                         ) -> tuple[np.ndarray, list[str]] | None:
        """Embeddings and sources of an unmasked enrolment photo's synthetic masked templates
        (``None`` for a masked photo or when templates are off;
        ``maskface.recognize.templates``)."""
        from maskface.recognize import fusion_config
        from maskface.recognize.templates import template_embeddings

        n = int(fusion_config().get("templates", 0))
        if n <= 0 or is_masked(face):
            return None
        return template_embeddings(self.engine.embedder, image, face, n=n,
                                   detector=_PoolDetector(self.engine))

    def _rows(self, faces: Sequence[Face], images: Sequence[np.ndarray] | None
              ) -> tuple[np.ndarray, list[bool], list[str | None]]:
        """Each photo's embedding then the masked templates of the unmasked ones (made from
        ``images``, the photos), with masked flags and sources."""
        from maskface.recognize.templates import with_templates

        templates = [self.masked_templates(img, f) for img, f in zip(images, faces)] \
            if images is not None else None
        return with_templates(np.stack([f.embedding for f in faces]),
                              [is_masked(f) for f in faces], [None] * len(faces), templates)

    def enrol(self, name: str, faces: Sequence[Face], groups: Sequence[str],
              images: Sequence[np.ndarray] | None = None, threshold: float | None = None,
              allow_duplicate: bool = False, actor: str | None = None) -> dict[str, Any]:
        """Enrol a new person (their photos, then the masked templates of the unmasked ones);
        refused (409) when the face is already enrolled as someone else, unless
        ``allow_duplicate`` (then recorded in the audit log, naming ``actor``)."""
        self.check_name_free(name)  # the clearer error first (the face most likely matches too)
        probes, masked = self._probes(faces)
        rows = functools.cache(lambda: self._rows(faces, images))  # once, even on a retry

        def store(dup, version: int) -> Person:
            # refused before the masked templates are made (about 0.5 s of CPU per photo)
            audit = self._decide(dup, allow_duplicate, ENROL_OVERRIDE, actor)
            emb, flags, sources = rows()
            return self.gallery.enroll(name, emb, masked=flags, sources=sources, audit=audit,
                                       metadata={"groups": list(groups)},
                                       expect_version=version)

        try:
            p = store_unless_duplicate(self.gallery, probes, masked, threshold, store)
        except DuplicateNameError:
            raise ApiError(409, "duplicate_name", f"'{name}' is already enrolled; add photos to "
                           "that person or choose another name") from None
        return _person(p)

    def add_faces(self, person_id: int, faces: Sequence[Face],
                  images: Sequence[np.ndarray] | None = None, threshold: float | None = None,
                  allow_duplicate: bool = False, actor: str | None = None) -> dict[str, Any]:
        """Add photos (and their masked templates) to a person; refused (409) when a photo
        matches another person."""
        pid = self._get(person_id).id
        probes, masked = self._probes(faces)
        rows = functools.cache(lambda: self._rows(faces, images))

        def store(dup, version: int) -> Person:
            audit = self._decide(dup, allow_duplicate, ADD_PHOTOS_OVERRIDE, actor)
            emb, flags, sources = rows()
            return self.gallery.add_embeddings(pid, emb, masked=flags, sources=sources,
                                               audit=audit, expect_version=version)

        return _person(store_unless_duplicate(self.gallery, probes, masked, threshold, store,
                                               exclude=pid))

    def audit(self, person_id: int | None, limit: int, offset: int) -> dict[str, Any]:
        events, total = self.gallery.audit_events(person_id, limit, offset)
        return {"events": [e.to_dict() for e in events], "total": total, "limit": limit,
                "offset": offset}

    def rename(self, person_id: int, name: str) -> None:
        self._get(person_id)
        try:
            self.gallery.rename(int(person_id), name)
        except DuplicateNameError:
            raise ApiError(409, "duplicate_name", f"'{name}' is already enrolled") from None

    def set_groups(self, person_id: int, groups: Sequence[str]) -> None:
        meta = dict(self._get(person_id).metadata)
        meta["groups"] = list(groups)
        self.gallery.update_metadata(int(person_id), meta)

    def delete(self, person_id: int) -> None:
        self._get(person_id)
        self.gallery.delete(int(person_id))

    def identify(self, faces: Sequence[Face], threshold: float | None,
                 k: int = 3) -> list[list[dict[str, Any]]]:
        """Fill each face's ``identity`` (open set) and return its best ``k`` candidates."""
        faces = [f for f in faces if f.embedding is not None]
        if not faces:
            return []
        from maskface.gallery.thresholds import thresholds_for

        # A masked probe is matched against masked templates and judged by its condition's
        # threshold (a policy threshold, when set, overrides every condition).
        masked = [is_masked(f) for f in faces]
        queries = self.engine.embedder.weigh(np.stack([f.embedding for f in faces]), masked)
        thr = self.engine.threshold if threshold is None else threshold
        per_condition = thresholds_for(self.gallery, self.engine.threshold) \
            if threshold is None else None
        matches = self.gallery.identify(queries, thr, k=k, masked=masked,
                                        thresholds=per_condition,
                                        template_weight=self.template_weight)
        out = []
        for face, m in zip(faces, matches):
            # the threshold the face was judged by, and its condition, travel with the answer
            score = float(m.score) if np.isfinite(m.score) else 0.0
            face.identity = Identity(m.person_id, m.name, score, float(m.threshold),
                                     m.condition)
            out.append([{"person_id": p, "name": n, "score": round(s, 4),
                         "threshold": round(m.threshold, 4), "condition": m.condition}
                        for p, n, s in m.candidates])
        return out

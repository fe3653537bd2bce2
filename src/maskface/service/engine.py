"""The models, loaded once per process: detector + mask classifier (the pipeline) and embedder.

Inference is CPU-bound; routes are plain ``def`` functions, which FastAPI runs in its
threadpool, so the event loop keeps answering (health, metrics) while images are processed.
``[models] workers`` sets how many images are processed at once. With one worker (the default)
one set of models uses every core: the lowest latency per check. With more, each worker gets
its own set of models with ``cores / workers`` threads per model: more checks per second, since
one thread per model needs less CPU per image than several (docs/performance.md).
"""

from __future__ import annotations

import logging
import os
import queue
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from maskface.errors import ModelError
from maskface.recognize.faces import largest as largest_face
from maskface.results import Face, Result, is_masked
from maskface.service.config import Models
from maskface.service.errors import ApiError

log = logging.getLogger(__name__)


@dataclass
class _Worker:
    """One set of models; a request holds one while it runs them."""

    pipeline: Any
    recognizer: Any


class Engine:
    """Runs the models on decoded images; holds no per-deployment state (no database)."""

    def __init__(self, models: Models | None = None):
        from maskface.models import session_threads
        from maskface.recognize import default_threshold

        models = models or Models()
        t0 = time.perf_counter()
        n = max(1, models.workers)
        with session_threads((os.cpu_count() or 1) // n) if n > 1 else nullcontext():
            workers = [_load(models) for _ in range(n)]
        self._pool: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        for worker in workers:
            self._pool.put(worker)
        first = workers[0]
        self.pipeline, self.recognizer = first.pipeline, first.recognizer
        self.embedder = first.recognizer.embedder
        self.threshold = default_threshold(self.embedder)
        self.models = models
        log.info("models loaded in %.1f s (%d worker%s)", time.perf_counter() - t0, n,
                 "s" if n > 1 else "")

    def describe(self) -> dict[str, Any]:
        return {"detector": self.pipeline.detector.name,
                "mask_classifier": (self.pipeline.classifier.name if self.pipeline.classifier
                                    else None),
                "embedder": self.embedder.name, "embedder_model": self.embedder.label,
                "embedding_dim": self.embedder.dim,
                "default_match_threshold": self.threshold}

    def analyze(self, image: np.ndarray, embed: bool = True) -> Result:
        """Detect, classify masks and (if ``embed``) compute each face's embedding."""
        worker = self._pool.get()  # blocks while every worker is busy
        try:
            result = worker.pipeline.analyze(image)
            if embed and result.faces:
                t0 = time.perf_counter()
                worker.recognizer.embed(result.image, result.faces)
                result.timings_ms["embed"] = (time.perf_counter() - t0) * 1e3
        finally:
            self._pool.put(worker)
        return result

    def embed(self, image: np.ndarray, faces: list[Face]) -> None:
        """Compute the embeddings of some faces of an analysed image (``analyze(embed=False)``),
        e.g. only the frames of a burst a decision rests on."""
        worker = self._pool.get()
        try:
            worker.recognizer.embed(image, faces)
        finally:
            self._pool.put(worker)

    def single_face(self, image: np.ndarray, label: str, largest: bool = False) -> Face:
        """The one face of an enrolment/verification photo, embedded; 422 if none or several."""
        faces = self.analyze(image).faces
        if not faces:
            raise ApiError(422, "no_face", f"{label}: no face found")
        if len(faces) > 1 and not largest:
            raise ApiError(422, "several_faces",
                           f"{label}: {len(faces)} faces found; send a photo of one person "
                           "(or set largest=true to use the largest face)")
        return largest_face(faces)

    def compare(self, a: Face, b: Face) -> dict[str, Any]:
        """1:1 verification of two embedded faces (``b`` the probe), at the threshold of
        their mask condition (``maskface.gallery.thresholds``) when the model has them."""
        from maskface.gallery.thresholds import condition, model_threshold
        from maskface.recognize.faces import comparison_size_warning

        cond = condition(is_masked(b), is_masked(a))
        score = float(np.dot(self.embedder.weigh(b.embedding, [is_masked(b)])[0], a.embedding))
        thr = model_threshold(self.embedder.name, cond, self.threshold)
        return {"same_person": score >= thr, "score": round(score, 4),
                "threshold": thr, "condition": cond,
                "warnings": [w for face, label in ((a, "image_a"), (b, "image_b"))
                             if (w := comparison_size_warning(face, label))],
                "faces": {"image_a": a.to_dict(), "image_b": b.to_dict()}}


def _load(models: Models) -> _Worker:
    from maskface.detect import video_detector
    from maskface.pipeline import Pipeline
    from maskface.recognize import Recognizer, create_embedder

    # MTCNN works from a minimum face size instead of a working resolution.
    detector = video_detector(models.detector) if models.detector == "mtcnn" else \
        video_detector(models.detector, input_size=models.detector_input_size)
    pipeline = Pipeline(detector=detector, classifier=_classifier(models))
    # Embedding only: matching needs the deployment's gallery (maskface.service.people).
    return _Worker(pipeline, Recognizer(create_embedder(models.embedder)))


def _classifier(models: Models):
    """The mask classifier: an explicit file must load; a missing default model degrades to no
    classifier (faces get no mask state, so a mask-requiring policy denies with
    ``mask_unknown``) rather than keeping the whole service down."""
    if models.classifier == "none":
        return None
    from maskface.classify import MaskClassifier

    if models.classifier != "default":
        return MaskClassifier(models.classifier)
    try:
        return MaskClassifier()
    except ModelError as exc:
        log.warning("no mask classifier (%s): mask states will be unknown", exc)
        return None


"""Detect → align → classify → recognise, composed once and run on many images.

Each stage is a model object built once per :class:`Pipeline`; the detector makes the
:class:`~maskface.results.Face` objects and every later stage fills in its own attribute, batched
over all faces of an image.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from maskface.detect import DEFAULT_DETECTOR, FaceDetector, create_detector
from maskface.errors import InputError
from maskface.io.image import ImageInput, load_image
from maskface.results import Face, Result

if TYPE_CHECKING:
    from maskface.classify import MaskClassifier


class Pipeline:
    """The maskface pipeline.

    Args:
        detector: a detector name (``retinaface``, the default for photos; ``yunet``, the
            fast choice for video; ``mtcnn``) or a ``FaceDetector`` instance.
        classifier: a mask-classifier ONNX file, a registered model name (e.g.
            ``"mask_classifier"``), a ``MaskClassifier``, ``"default"`` (the shipped
            three-way stage, ``mask_classifier_3way_int8``) or ``None`` to skip mask
            classification.
        recognizer: an object with ``identify(image, faces) -> None`` that fills
            ``face.identity`` (and ``face.embedding``), e.g. a gallery matcher; optional.
        liveness: ``True`` to fill ``face.liveness`` (MiniFASNet, box mapping for this
            detector), a ``LivenessChecker``, or ``False``/``None`` to skip.
        quality: ``True`` to fill ``face.quality`` (size, sharpness, pose, exposure), a
            ``QualityAssessor``, or ``False``/``None`` to skip.
    """

    def __init__(self, detector: str | FaceDetector = DEFAULT_DETECTOR,
                 classifier: str | Path | MaskClassifier | None = "default",
                 recognizer=None, liveness=None, quality=None):
        _check_stage("detector", detector, "detect", "a detector name or a FaceDetector",
                     allow=(str,))
        _check_stage("recognizer", recognizer, "identify", "an object with identify(image, "
                     "faces), e.g. a gallery Recognizer, or None")
        _check_stage("liveness", liveness, "check", "True, False, None or a LivenessChecker",
                     allow=(bool, type(None)))
        _check_stage("quality", quality, "assess", "True, False, None or a QualityAssessor",
                     allow=(bool, type(None)))
        self.detector = create_detector(detector) if isinstance(detector, str) else detector
        if classifier is None:
            self.classifier = None
        elif isinstance(classifier, (str, Path)):
            from maskface.classify import MaskClassifier

            self.classifier = MaskClassifier(classifier)
        else:
            self.classifier = classifier
        self.recognizer = recognizer
        if liveness is True:
            from maskface.liveness import LivenessChecker

            liveness = LivenessChecker(self.detector.name)
        self.liveness = liveness or None
        if quality is True:
            from maskface.quality import QualityAssessor

            quality = QualityAssessor()
        self.quality = quality or None

    def __call__(self, source: ImageInput) -> Result:
        return self.analyze(source)

    def analyze(self, source: ImageInput) -> Result:
        """Run every stage on one image (path, bytes, PIL image or BGR array)."""
        t0 = time.perf_counter()
        image = load_image(source)
        name = str(source) if isinstance(source, (str, Path)) else "<image>"
        t1 = time.perf_counter()
        det = self.detector.detect(image)
        faces = [Face(box=det.boxes[i], score=float(det.scores[i]), landmarks=det.landmarks[i])
                 for i in range(len(det))]
        t2 = time.perf_counter()
        timings = {"decode": (t1 - t0) * 1e3, "detect": (t2 - t1) * 1e3}
        if self.classifier is not None and faces:
            preds = self.classifier.classify(image, det.boxes)
            for face, pred in zip(faces, preds):
                face.mask = pred
        t3 = time.perf_counter()
        timings["classify"] = (t3 - t2) * 1e3
        if self.liveness is not None or self.quality is not None:
            timings.update(face_stages(image, faces, self.liveness, self.quality))
            t3 = time.perf_counter()
        if self.recognizer is not None and faces:
            self.recognizer.identify(image, faces)
            timings["recognize"] = (time.perf_counter() - t3) * 1e3
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return Result(faces=faces, image=image, source=name, timings_ms=timings)

    def analyze_array(self, image: np.ndarray, source: str = "<frame>") -> Result:
        """Same as :meth:`analyze` for an already-decoded BGR frame (video)."""
        result = self.analyze(image)
        result.source = source
        return result


def _check_stage(option: str, value, method: str, expected: str, allow: tuple = ()) -> None:
    """An option that is neither one of the ``allow`` types nor an object with ``method`` is an
    InputError now, not an AttributeError deep inside the first analyze()."""
    if value is None and option == "recognizer":
        return
    if isinstance(value, allow) or callable(getattr(value, method, None)):
        return
    raise InputError(f"Pipeline({option}=...): expected {expected}, got {value!r:.60}")


def face_stages(image: np.ndarray, faces: list[Face], liveness=None, quality=None
                ) -> dict[str, float]:
    """Fill ``face.liveness`` (a ``LivenessChecker``) and ``face.quality`` (a
    ``QualityAssessor``), each stage only when given; returns their timings (ms)."""
    timings: dict[str, float] = {}
    if liveness is not None and faces:
        t0 = time.perf_counter()
        liveness.check(image, faces)
        timings["liveness"] = (time.perf_counter() - t0) * 1e3
    if quality is not None and faces:
        t0 = time.perf_counter()
        quality.assess(image, faces)
        timings["quality"] = (time.perf_counter() - t0) * 1e3
    return timings


_default: Pipeline | None = None
_default_lock = threading.Lock()


def analyze(source: ImageInput) -> Result:
    """Analyse one image with the default pipeline (built on first use, then reused)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Pipeline()
    return _default.analyze(source)

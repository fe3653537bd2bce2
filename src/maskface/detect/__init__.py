"""Face detectors behind one interface; ``create_detector(name)`` builds one by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskface.errors import InputError

if TYPE_CHECKING:
    from maskface.detect.base import Detections, FaceDetector

DETECTORS = ("yunet", "retinaface", "mtcnn")
#: the detector with the best recall/cost trade-off on real scenes (see docs/detection.md)
DEFAULT_DETECTOR = "retinaface"


def create_detector(name: str = DEFAULT_DETECTOR, **kwargs) -> FaceDetector:
    """Build a detector by name: ``retinaface`` (default), ``yunet`` or ``mtcnn``; keyword
    arguments (``input_size``, ``scales``, ``flip``, ``tile``, ``score_threshold``, ...) go to
    the detector's class."""
    name = name.lower()
    if name == "yunet":
        from maskface.detect.yunet import YuNetDetector

        return YuNetDetector(**kwargs)
    if name == "retinaface":
        from maskface.detect.retinaface import RetinaFaceDetector

        return RetinaFaceDetector(**kwargs)
    if name == "mtcnn":
        from maskface.detect.mtcnn import MTCNNDetector

        return MTCNNDetector(**kwargs)
    raise InputError(f"unknown detector '{name}'; choose one of: {', '.join(DETECTORS)}")


def __getattr__(name: str):
    # Lazy: the CLI reads DEFAULT_DETECTOR for its --help without importing numpy.
    if name in ("Detections", "FaceDetector"):
        from maskface.detect import base

        return getattr(base, name)
    raise AttributeError(name)


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "Detections", "FaceDetector", "create_detector"]

"""Face detectors behind one interface; ``create_detector(name)`` builds one by name."""

from __future__ import annotations

from maskface.detect.base import Detections, FaceDetector
from maskface.errors import InputError

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


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "Detections", "FaceDetector", "create_detector"]

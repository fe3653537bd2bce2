"""Face detectors behind one interface; ``create_detector(name)`` builds one by name."""

from __future__ import annotations

from maskface.detect.base import Detections, FaceDetector
from maskface.errors import InputError

DETECTORS = ("yunet", "retinaface", "mtcnn")


def create_detector(name: str = "yunet", **kwargs) -> FaceDetector:
    """Build a detector by name: ``yunet`` (default), ``retinaface`` or ``mtcnn``."""
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


__all__ = ["DETECTORS", "Detections", "FaceDetector", "create_detector"]

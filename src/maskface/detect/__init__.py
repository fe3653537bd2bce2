"""Face detectors behind one interface; ``create_detector(name)`` builds one by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskface.errors import InputError

if TYPE_CHECKING:
    from maskface.detect.base import Detections, FaceDetector

DETECTORS = ("yunet", "retinaface", "mtcnn")
#: the detector with the best recall/cost trade-off on real scenes (see docs/detection.md)
DEFAULT_DETECTOR = "retinaface"
#: named detection settings (detector, options), measured in docs/detection.md: ``kiosk`` is
#: the fast live-video path, ``photo`` the default for photos (a 3x pass on crowds of three or
#: more small faces), ``crowd`` the 3x pass on any photo with a small face
PROFILES: dict[str, tuple[str, dict]] = {
    "kiosk": ("yunet", {"input_size": 640}),
    "photo": (DEFAULT_DETECTOR, {}),
    "crowd": ("retinaface", {"input_size": 1024, "small_face_zoom": 3.0,
                             "zoom_min_small_faces": 1}),
}


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


def profile_detector(profile: str, **overrides) -> FaceDetector:
    """The detector of a named profile (:data:`PROFILES`); ``overrides`` replace its options."""
    if profile not in PROFILES:
        raise InputError(f"unknown detection profile '{profile}'; choose one of: "
                         f"{', '.join(PROFILES)}")
    name, options = PROFILES[profile]
    return create_detector(name, **{**options, **overrides})


def video_detector(name: str = "yunet", **kwargs) -> FaceDetector:
    """A detector for live video and door frames: as :func:`create_detector`, without the
    small-face zoom pass (the face that matters is the near one, and a crowd behind it must not
    cost a 3x pass per frame)."""
    if name.lower() != "mtcnn":
        kwargs.setdefault("small_face_zoom", None)
    return create_detector(name, **kwargs)


def __getattr__(name: str):
    # Lazy: the CLI reads DEFAULT_DETECTOR for its --help without importing numpy.
    if name in ("Detections", "FaceDetector"):
        from maskface.detect import base

        return getattr(base, name)
    raise AttributeError(name)


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "PROFILES", "Detections", "FaceDetector",
           "create_detector", "profile_detector", "video_detector"]

"""Synthetic masked faces: draw surgical, N95, KN95 and cloth masks (or MaskTheFace templates)
onto faces, worn correctly or not, from dense landmarks.

Importing this package is cheap: MediaPipe loads only when a landmarker is first built.
"""

from maskface.synth.apply import NoLandmarksError, apply_mask, dense_landmarks
from maskface.synth.landmarks import DenseLandmarks, FaceLandmarker
from maskface.synth.styles import COLOURS, MASK_TYPES, PATTERNS, WEARS, MaskStyle, random_style
from maskface.synth.templates import TemplateSet

__all__ = [
    "COLOURS",
    "MASK_TYPES",
    "PATTERNS",
    "WEARS",
    "DenseLandmarks",
    "FaceLandmarker",
    "MaskStyle",
    "NoLandmarksError",
    "TemplateSet",
    "apply_mask",
    "dense_landmarks",
    "random_style",
]

"""Mask classification: is the face masked, unmasked, or masked incorrectly?"""

from maskface.classify.classifier import MaskClassifier
from maskface.classify.crop import CROP_SCALE, face_crop

__all__ = ["CROP_SCALE", "MaskClassifier", "face_crop"]

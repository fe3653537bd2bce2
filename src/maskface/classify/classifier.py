"""Mask classifier inference on onnxruntime, batched.

The ONNX model takes ``float32 (N, 3, S, S)`` BGR pixels in 0..255 and returns class
probabilities ``(N, C)``; normalisation is inside the graph, so inference needs no torch and
cannot drift from training. Its metadata carries the labels, the input size and the crop scale.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from maskface.classify.crop import CROP_SCALE, face_crop
from maskface.errors import ModelError
from maskface.models import ort_session
from maskface.results import MaskPrediction

#: the shipped default: with_mask / without_mask / mask_incorrect (see classify/three_way.py);
#: ``mask_classifier`` (two classes) and ``mask_classifier_3class`` stay selectable by name.
DEFAULT_MODEL = "mask_classifier_3way"


class MaskClassifier:
    """Classifies face crops as ``with_mask`` / ``without_mask`` (/ ``mask_incorrect``)."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, batch_size: int = 32):
        self.session = ort_session(model)
        self.batch_size = batch_size
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.labels: tuple[str, ...] = tuple(json.loads(meta["labels"]))
            self.input_size = int(meta["input_size"])
        except (KeyError, ValueError) as exc:
            raise ModelError(
                f"{model}: not a maskface classifier (metadata {exc} missing)"
            ) from None
        self.crop_scale = float(meta.get("crop_scale", CROP_SCALE))
        self._input = self.session.get_inputs()[0].name

    def crops(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Classifier crops for each box, ``(N, S, S, 3)`` BGR uint8."""
        boxes = np.asarray(boxes).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, self.input_size, self.input_size, 3), np.uint8)
        return np.stack([face_crop(image, b, self.input_size, self.crop_scale) for b in boxes])

    def predict_proba(self, crops: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities for BGR crops already of the input size, batched."""
        crops = np.asarray(crops)
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        out = []
        for i in range(0, len(crops), self.batch_size):
            x = crops[i : i + self.batch_size].astype(np.float32).transpose(0, 3, 1, 2)
            out.append(self.session.run(None, {self._input: np.ascontiguousarray(x)})[0])
        return np.concatenate(out).astype(np.float32)

    def to_predictions(self, probs: np.ndarray) -> list[MaskPrediction]:
        preds = []
        for p in probs:
            k = int(np.argmax(p))
            preds.append(MaskPrediction(self.labels[k], float(p[k]),
                                        {lab: float(v) for lab, v in zip(self.labels, p)}))
        return preds

    def classify(self, image: np.ndarray, boxes: np.ndarray) -> list[MaskPrediction]:
        """Mask predictions for the faces at ``boxes`` in ``image``, one batch for all faces."""
        return self.to_predictions(self.predict_proba(self.crops(image, boxes)))

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
from maskface.classify.three_way import (
    COMPOSITES,
    THREE_WAY_LABELS,
    ThreeWay,
    rule_from_metadata,
    three_way_probs,
)
from maskface.errors import ModelError
from maskface.models import ort_session
from maskface.results import MaskPrediction

#: the shipped default: with_mask / without_mask / mask_incorrect (see classify/three_way.py);
#: ``mask_classifier`` (two classes) stays selectable by name.
DEFAULT_MODEL = "mask_classifier_3way_int8"


class MaskClassifier:
    """Classifies face crops as ``with_mask`` / ``without_mask`` (/ ``mask_incorrect``).

    ``model`` is an ONNX file, a registered name, or a composite of two registered networks
    (:data:`maskface.classify.three_way.COMPOSITES`, the default among them): both then run
    on the same crops and the three-way rule combines their outputs. A shared graph that
    carries its rule in its metadata (a ``maskface train classifier`` run's ``shared.onnx``)
    is a three-way stage by itself."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, batch_size: int = 32):
        self.batch_size = batch_size
        if str(model) == "default":  # the word every --classifier/--model option takes
            model = DEFAULT_MODEL
        #: the registered name or file this stage runs (what a report or /health names)
        self.name = str(model)
        self.three_way = COMPOSITES.get(str(model))
        parts = self.three_way.models if self.three_way else (model,)
        self.sessions = [ort_session(m) for m in parts]
        if self.three_way is None:  # a trained shared graph carrying its own rule
            rule = rule_from_metadata(self.sessions[0].get_modelmeta().custom_metadata_map)
            self.three_way = ThreeWay((str(model),), *rule) if rule else None
        metas = [self._meta(m, s) for m, s in zip(parts, self.sessions)]
        outputs = [labels for m in metas for labels in m[0]]
        if self.three_way:
            if outputs != [("with_mask", "without_mask"), THREE_WAY_LABELS]:
                raise ModelError(f"{model}: needs a two-class and a three-class output")
            if len({m[1:] for m in metas}) != 1:
                raise ModelError(f"{model}: its two classifiers differ in input size or crop")
            self.labels = THREE_WAY_LABELS
        elif len(outputs) != 1:
            raise ModelError(f"{model}: has {len(outputs)} outputs and no three-way rule in "
                             "its metadata ('maskface train classifier' stores one when it "
                             "trains a shared graph with a scenes dataset's val split)")
        else:
            self.labels = outputs[0]
        self.input_size, self.crop_scale = metas[0][1:]
        self._inputs = [s.get_inputs()[0].name for s in self.sessions]

    @staticmethod
    def _meta(model, session) -> tuple[list[tuple[str, ...]], int, float]:
        """Labels of each output, input size and crop scale from a classifier's ONNX
        metadata (a shared graph's second output, ``branch_probs``, has ``branch_labels``)."""
        meta = session.get_modelmeta().custom_metadata_map
        keys = {"probs": "labels", "branch_probs": "branch_labels"}
        try:
            labels = [tuple(json.loads(meta[keys.get(o.name, "labels")]))
                      for o in session.get_outputs()]
            return labels, int(meta["input_size"]), float(meta.get("crop_scale", CROP_SCALE))
        except (KeyError, ValueError) as exc:
            raise ModelError(
                f"{model}: not a maskface classifier (metadata {exc} missing)"
            ) from None

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
            x = np.ascontiguousarray(
                crops[i : i + self.batch_size].astype(np.float32).transpose(0, 3, 1, 2))
            p = [q for s, name in zip(self.sessions, self._inputs) for q in s.run(None, {name: x})]
            out.append(three_way_probs(*p, self.three_way.threshold, self.three_way.override)
                       if self.three_way else p[0])
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

"""The seeds' pipeline, rebuilt for timing: ResNet-10 SSD + a 224-px MobileNetV2, one face at a
time, with no batching and a fresh crop/resize/normalise per face.

The seeds' trained 224-px weights are not available, so its classifier is MobileNetV2 with the
ImageNet features and a 2-class head, exported to ONNX at bench time (needs PyTorch, the
``train`` extra). Its arithmetic, and so its speed, is that of a trained one; its predictions are
not meaningful, so the baseline's *accuracy* is measured with the project's classifier (see
:func:`maskface.bench.accuracy.scene_accuracy`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from maskface.classify.crop import face_crop
from maskface.detect.ssd_baseline import SSDBaselineDetector
from maskface.errors import ModelError
from maskface.models import ort_session

log = logging.getLogger(__name__)

BASELINE_SIZE = 224


def export_mobilenet_v2(path: Path, size: int = BASELINE_SIZE, num_classes: int = 2) -> Path:
    """Export an ImageNet-initialised MobileNetV2 (BGR 0..255 in, softmax out) to ONNX."""
    try:
        import torch

        from maskface.train.mobilenet import DeployModel, mobilenet_v2
    except ImportError as exc:
        raise ModelError(f"the 224-px baseline classifier needs PyTorch (the 'train' extra): "
                         f"{exc}") from None
    net = DeployModel(mobilenet_v2(num_classes, pretrained=True)).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with torch.no_grad():
        torch.onnx.export(net, torch.zeros(1, 3, size, size), str(tmp), input_names=["input"],
                          output_names=["probs"], dynamic_axes={"input": {0: "n"}},
                          opset_version=17, dynamo=False)
    os.replace(tmp, path)
    return path


def baseline_model_path(cache_dir: Path | None = None) -> Path:
    """The baseline classifier's ONNX file, exported on first use and cached."""
    cache = cache_dir or Path(os.environ.get("MASKFACE_CACHE",
                                             Path(tempfile.gettempdir()) / "maskface-cache"))
    path = cache / f"baseline_mobilenet_v2_{BASELINE_SIZE}.onnx"
    if not path.is_file():
        log.info("exporting the baseline MobileNetV2 (%d px) to %s", BASELINE_SIZE, path)
        export_mobilenet_v2(path)
    return path


class BaselineClassifier:
    """A 224-px classifier run the seeds' way: one face per ``session.run``."""

    def __init__(self, model: str | Path | None = None, size: int = BASELINE_SIZE):
        self.session = ort_session(Path(model) if model else baseline_model_path())
        self.size = size
        self._input = self.session.get_inputs()[0].name

    def classify(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, C)``, computed face by face."""
        out = []
        for box in np.asarray(boxes).reshape(-1, 4):
            crop = face_crop(image, box, self.size, scale=1.0)
            x = crop.astype(np.float32).transpose(2, 0, 1)[None]
            out.append(self.session.run(None, {self._input: x})[0][0])
        return np.array(out, dtype=np.float32).reshape(len(out), -1)


class BaselinePipeline:
    """SSD detector + one-face-at-a-time 224-px classifier."""

    def __init__(self, classifier_model: str | Path | None = None):
        self.detector = SSDBaselineDetector()
        self.classifier = BaselineClassifier(classifier_model)

    def analyze(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``(N, 4)`` and class probabilities ``(N, C)``."""
        det = self.detector.detect(image)
        return det.boxes, self.classifier.classify(image, det.boxes)

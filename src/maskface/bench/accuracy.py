"""Scene accuracy of a detect-then-classify pipeline, for the bench's "equal or better" check.

A prediction matches a true face at IoU > 0.5 (``maskface.eval.pipeline.match_boxes``, the
same one-to-one matching as ``maskface eval pipeline``); a face counts as
correct when it is matched and its mask label is right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from maskface.eval.pipeline import match_boxes

#: ``image -> (boxes (N, 4), labels)`` for a pipeline under test
Predictor = Callable[[np.ndarray], tuple[np.ndarray, Sequence[str]]]


@dataclass
class SceneAccuracy:
    images: int = 0
    faces: int = 0
    detected: int = 0
    correct: int = 0
    false_detections: int = 0

    @property
    def recall(self) -> float:
        return self.detected / self.faces if self.faces else 0.0

    @property
    def accuracy(self) -> float:
        """Faces found *and* classified right, over all true faces."""
        return self.correct / self.faces if self.faces else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "recall": round(self.recall, 4),
                "accuracy": round(self.accuracy, 4)}


def scene_accuracy(scenes: Sequence, predict: Predictor, load=None) -> SceneAccuracy:
    """Run ``predict`` on every scene (``maskface.eval.scenes.SceneImage``) and count."""
    from maskface.io import load_image

    load = load or load_image
    acc = SceneAccuracy()
    for scene in scenes:
        image = load(scene.path)
        boxes, labels = predict(image)
        match = match_boxes(np.asarray(boxes).reshape(-1, 4), scene.boxes)
        pairs = [(t, int(p)) for t, p in enumerate(match) if p >= 0]
        acc.images += 1
        acc.faces += len(scene.labels)
        acc.detected += len(pairs)
        acc.correct += sum(scene.labels[t] == labels[p] for t, p in pairs)
        acc.false_detections += len(boxes) - len(pairs)
    return acc

"""The kiosk's extra stages, run only by access checks: liveness and face quality.

Built once per process for the engine's detector (the liveness crop depends on the detector's
box shape) and shared by every request: onnxruntime sessions are safe to run from several
threads, and the quality measures hold no state.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from maskface.errors import ModelError

log = logging.getLogger(__name__)

_lock = threading.Lock()
_stages: dict[str, Any] = {}


class DoorStages:
    """Liveness checker (``None`` when its model cannot load) and quality assessor."""

    def __init__(self, detector: str):
        from maskface.liveness import LivenessChecker
        from maskface.quality import QualityAssessor

        try:
            self.liveness = LivenessChecker(detector)
        except ModelError as exc:
            # Without the model, faces get no liveness: a policy requiring it denies with
            # liveness_unknown rather than the service refusing every request.
            log.warning("no liveness model (%s): liveness will be unknown", exc)
            self.liveness = None
        self.quality = QualityAssessor()


def door_stages(detector: str) -> DoorStages:
    """The process's stages for ``detector``, built on first use."""
    with _lock:
        if detector not in _stages:
            _stages[detector] = DoorStages(detector)
        return _stages[detector]

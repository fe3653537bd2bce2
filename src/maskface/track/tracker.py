"""Face tracking across frames with ByteTrack from the maintained ``trackers`` library.

We only adapt types: our :class:`~maskface.detect.base.Detections` go in, one track id per
detection comes out (``-1`` while a track is not yet confirmed), in the detections' order.
"""

from __future__ import annotations

import numpy as np

from maskface.detect.base import Detections
from maskface.errors import MaskfaceError


class FaceTracker:
    """ByteTrack over face boxes.

    Args:
        fps: the source's frame rate (scales how long a lost track is kept).
        lost_seconds: how long a face may go undetected before its track ends.
        min_score: detector score needed to start a track; weaker detections can only
            continue an existing one (ByteTrack's second association stage).
        confirm_frames: consecutive detections before a track gets an id (filters one-frame
            false detections).
    """

    def __init__(self, fps: float = 25.0, lost_seconds: float = 1.0, min_score: float = 0.6,
                 confirm_frames: int = 2):
        try:
            from trackers import ByteTrackTracker
        except ImportError:  # pragma: no cover - depends on the install
            raise MaskfaceError(
                "tracking needs the 'trackers' package: pip install --no-deps trackers==2.6.1 "
                "supervision rich pydeprecate"
            ) from None
        self._tracker = ByteTrackTracker(
            # the library counts the lost buffer in 30-fps frames and rescales by frame_rate
            lost_track_buffer=max(1, round(lost_seconds * 30)),
            frame_rate=fps,
            track_activation_threshold=min_score,
            high_conf_det_threshold=min_score,
            minimum_consecutive_frames=confirm_frames,
            minimum_iou_threshold=0.1,
        )

    def update(self, det: Detections, timestamp: float | None = None) -> np.ndarray:
        """Track ids ``(N,)`` for the N detections of this frame.

        ``timestamp`` (seconds) lets the motion model handle dropped frames; without it every
        call is one frame step.
        """
        import supervision as sv

        n = len(det)
        svd = sv.Detections(
            xyxy=det.boxes.astype(np.float32).reshape(-1, 4),
            confidence=det.scores.astype(np.float32).reshape(-1),
            data={"det_index": np.arange(n)},
        )
        out = self._tracker.update(svd, timestamp=timestamp)
        ids = np.full(n, -1, dtype=np.int64)
        if len(out):
            ids[np.asarray(out.data["det_index"], dtype=np.int64)] = out.tracker_id
        return ids

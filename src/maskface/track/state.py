"""Per-track state: what the slow models said about a face, kept while it is tracked.

Mask classification and recognition run when a track starts and are refreshed every
``refresh_frames`` frames, or sooner when the face's box has moved or grown a lot since the last
refresh; in between, every frame shows the track's vote.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maskface.geometry import iou_matrix
from maskface.results import Identity, MaskPrediction


@dataclass
class TrackState:
    """Everything known about one tracked face."""

    track_id: int
    first_frame: int
    last_frame: int
    first_time: float
    last_time: float
    n_frames: int = 0
    #: box and frame of the last refresh (classification/recognition)
    refresh_box: np.ndarray | None = field(default=None, repr=False)
    refresh_frame: int = -1
    #: (frame, label, probability) of every classification of this track
    mask_history: list[tuple[int, str, float]] = field(default_factory=list)
    _prob_sum: dict[str, float] = field(default_factory=dict, repr=False)
    identity_history: list[tuple[int, Identity]] = field(default_factory=list)

    def see(self, frame: int, time_s: float) -> None:
        self.last_frame, self.last_time = frame, time_s
        self.n_frames += 1

    def add_mask(self, frame: int, pred: MaskPrediction) -> None:
        self.mask_history.append((frame, pred.label, float(pred.probability)))
        for label, p in pred.probabilities.items():
            self._prob_sum[label] = self._prob_sum.get(label, 0.0) + float(p)

    def add_identity(self, frame: int, identity: Identity) -> None:
        self.identity_history.append((frame, identity))

    @property
    def mask(self) -> MaskPrediction | None:
        """The track's vote: class probabilities averaged over all its classifications."""
        if not self._prob_sum:
            return None
        n = len(self.mask_history)
        probs = {k: v / n for k, v in self._prob_sum.items()}
        label = max(probs, key=probs.get)
        return MaskPrediction(label, probs[label], probs)

    @property
    def identity(self) -> Identity | None:
        """The most frequent identity over the track's recognitions (latest one of that id)."""
        if not self.identity_history:
            return None
        counts = Counter(ident.person_id for _, ident in self.identity_history)
        best = counts.most_common(1)[0][0]
        return next(i for _, i in reversed(self.identity_history) if i.person_id == best)

    def to_dict(self) -> dict[str, Any]:
        vote, ident = self.mask, self.identity
        return {
            "track_id": self.track_id,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "first_time_s": round(self.first_time, 3),
            "last_time_s": round(self.last_time, 3),
            "frames_seen": self.n_frames,
            "mask": vote.to_dict() if vote else None,
            "mask_history": [{"frame": f, "label": lab, "probability": round(p, 4)}
                             for f, lab, p in self.mask_history],
            "identity": ident.to_dict() if ident else None,
            "identity_history": [{"frame": f, **i.to_dict()} for f, i in self.identity_history],
        }


class TrackBook:
    """The states of all tracks of one video, and the refresh policy."""

    def __init__(self, refresh_frames: int = 15, refresh_iou: float = 0.5):
        self.refresh_frames = refresh_frames
        self.refresh_iou = refresh_iou
        self.tracks: dict[int, TrackState] = {}

    def see(self, track_id: int, frame: int, time_s: float) -> TrackState:
        state = self.tracks.get(track_id)
        if state is None:
            state = self.tracks[track_id] = TrackState(track_id, frame, frame, time_s, time_s)
        state.see(frame, time_s)
        return state

    def needs_refresh(self, state: TrackState, box: np.ndarray, frame: int) -> bool:
        """New track, ``refresh_frames`` elapsed, or the box moved/resized a lot since."""
        if state.refresh_box is None:
            return True
        if frame - state.refresh_frame >= self.refresh_frames:
            return True
        return float(iou_matrix(state.refresh_box, box)[0, 0]) < self.refresh_iou

    def refreshed(self, state: TrackState, box: np.ndarray, frame: int) -> None:
        state.refresh_box = np.asarray(box, dtype=np.float32).copy()
        state.refresh_frame = frame

    def __len__(self) -> int:
        return len(self.tracks)

    def __iter__(self):
        return iter(sorted(self.tracks.values(), key=lambda s: s.track_id))

"""Kiosk decisions from a video or camera: one decision per person at the door, made once over
their best frames (the same rules as ``POST /v1/access/check`` with a burst).

Per frame: detect, track (ByteTrack), take the person at the door (largest, most central face)
and score its quality (cheap). Each door track keeps its best frames by quality; once it has
``best`` frames that pass the quality gate, or when it ends, the slow stages (mask, identity,
liveness) run on those frames only and :func:`~maskface.service.decision.decide_burst` decides
once. A track is decided at most once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maskface.quality import QualityAssessor
from maskface.results import Face
from maskface.service.config import Policy
from maskface.service.decision import (
    BEST_FRAMES,
    decide_burst,
    decision_line,
    door_face,
    quality_reasons,
)
from maskface.track.tracker import FaceTracker

#: how often a camera door re-reads rules that may change while it runs (seconds)
POLICY_REFRESH_S = 5.0


@dataclass
class _DoorTrack:
    track_id: int
    first_frame: int
    last_frame: int
    seen: int = 0
    #: (quality key, frame index, image, door face, every face), best first, at most ``best``
    kept: list[tuple[tuple[bool, float], int, np.ndarray, Face, list[Face]]] = field(
        default_factory=list)


class KioskWatcher:
    """Makes door decisions over a frame source.

    Args:
        pipeline: supplies ``detector``, ``classifier`` and ``recognizer`` (both optional).
        liveness: a ``LivenessChecker`` (or ``None``: liveness unknown, denied if required).
        policy: the access rules (``maskface.service.config.Policy``).
        best: frames voted over per person.
        lost_seconds: how long the door face may be missed before its track ends.
        groups_of: a person id's groups, for a policy's ``allowed_groups``; by default read
            from the recogniser's gallery.
        policy_now: where the rules in force come from, if they can change while it runs
            (a door's policy in the shared store), instead of a fixed ``policy``; asked at most
            every :data:`POLICY_REFRESH_S` seconds.
        temperature_now: the body temperature at this door now (a pushed sensor reading), or
            ``None``; asked once per decision.
    """

    def __init__(self, pipeline, liveness=None, policy: Policy | None = None,
                 best: int = BEST_FRAMES, lost_seconds: float = 1.0,
                 groups_of: Callable[[int], Collection[str]] | None = None,
                 policy_now: Callable[[], Policy] | None = None,
                 temperature_now: Callable[[], float | None] | None = None):
        self.pipeline = pipeline
        self.liveness = liveness
        fixed = policy or Policy()
        self._policy_now = policy_now or (lambda: fixed)
        self._policy, self._policy_at = fixed, -float("inf")
        self.temperature_now = temperature_now or (lambda: None)
        gallery = getattr(pipeline.recognizer, "gallery", None)
        # without it everyone recognised was "not in a group allowed to enter"
        self.groups_of = groups_of or ((lambda pid: gallery.get(pid).groups)
                                       if gallery is not None else (lambda pid: ()))
        self.best = best
        self.lost_seconds = lost_seconds
        self.quality = QualityAssessor()
        self.frames = 0

    @property
    def policy(self) -> Policy:
        if time.monotonic() - self._policy_at >= POLICY_REFRESH_S:
            self._policy, self._policy_at = self._policy_now(), time.monotonic()
        return self._policy

    def _ready(self, tr: _DoorTrack) -> bool:
        return len(tr.kept) >= self.best and all(k[0][0] for k in tr.kept)

    def _decide(self, tr: _DoorTrack, shape: tuple[int, int], end_frame: int,
                fps: float) -> tuple[dict[str, Any], np.ndarray]:
        images = [k[2] for k in tr.kept]

        def prepare(chosen: dict[int, Face]) -> None:
            # the slow stages, on the frames the decision rests on only
            for i, face in chosen.items():
                if self.pipeline.classifier is not None:
                    face.mask = self.pipeline.classifier.classify(images[i],
                                                                  face.box[None, :4])[0]
                if self.pipeline.recognizer is not None:
                    self.pipeline.recognizer.identify(images[i], [face])
                if self.liveness is not None:
                    self.liveness.check(images[i], [face])

        # every face of each frame: a second person beside the tracked one is judged as in
        # a single photo (several_faces), not left out
        d = decide_burst([(k[4], shape) for k in tr.kept], self.policy,
                         self.temperature_now(), groups_of=self.groups_of, prepare=prepare)
        out = d.to_dict()
        used = (out.get("evidence") or {}).get("used") or [0]
        best = images[used[0]]  # the frame the decision rests on
        # evidence frame numbers: the source's, not the burst's
        idx = [k[1] for k in tr.kept]
        if out.get("evidence"):
            for row in out["evidence"]["frames"]:
                row["frame"] = idx[row["frame"]]
            out["evidence"]["used"] = [idx[i] for i in out["evidence"]["used"]]
        return {"track_id": tr.track_id, "frame": end_frame,
                "time_s": round(end_frame / fps, 3), "first_frame": tr.first_frame,
                "frames_seen": tr.seen, **out}, best

    def run(self, source, max_frames: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield one decision dict per person at the door (stop after ``max_frames`` frames;
        people still in view are then decided on what was seen)."""
        for decision, _ in self.run_with_frames(source, max_frames):
            yield decision

    def run_with_frames(self, source, max_frames: int | None = None
                        ) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
        """:meth:`run`, each decision with the frame it rests on (for a snapshot photo)."""
        fps = source.info.fps
        tracker = FaceTracker(fps=fps, lost_seconds=self.lost_seconds,
                              min_score=getattr(self.pipeline.detector, "score_threshold", 0.6))
        max_gap = max(1, round(self.lost_seconds * fps)) + 1
        tracks: dict[int, _DoorTrack] = {}
        decided: set[int] = set()
        shape = (0, 0)
        last = 0
        for frame in source:
            if max_frames is not None and self.frames >= max_frames:
                break
            self.frames += 1
            last = frame.index
            image = frame.image
            shape = image.shape[:2]
            det = self.pipeline.detector.detect(image)
            ids = tracker.update(det, timestamp=frame.time_s)
            faces = [Face(box=det.boxes[i], score=float(det.scores[i]),
                          landmarks=det.landmarks[i],
                          track_id=int(ids[i]) if ids[i] >= 0 else None)
                     for i in range(len(det))]
            door, _ = door_face(faces, shape)
            if door is not None and door.track_id is not None and door.track_id not in decided:
                self.quality.assess(image, [door])
                tr = tracks.setdefault(door.track_id,
                                       _DoorTrack(door.track_id, frame.index, frame.index))
                tr.seen += 1
                tr.last_frame = frame.index
                key = (not quality_reasons(door, self.policy), door.quality.score)
                tr.kept.append((key, frame.index, image, door, faces))
                tr.kept.sort(key=lambda k: k[0], reverse=True)
                del tr.kept[self.best:]
                if self._ready(tr):
                    decided.add(tr.track_id)
                    yield self._decide(tracks.pop(tr.track_id), shape, frame.index, fps)
            for tid in [t for t, tr in tracks.items() if frame.index - tr.last_frame > max_gap]:
                decided.add(tid)
                yield self._decide(tracks.pop(tid), shape, frame.index, fps)
        for tid in list(tracks):
            yield self._decide(tracks.pop(tid), shape, last, fps)


def kiosk_to_file(watcher: KioskWatcher, source, path, echo=print,
                  max_frames: int | None = None,
                  record: Callable[[dict[str, Any], np.ndarray], int] | None = None
                  ) -> dict[str, Any]:
    """Run ``watcher`` (on at most ``max_frames`` frames), write one JSON line per decision to
    ``path``; with ``record`` (e.g. into the store's access log, given the decision and its
    frame, returning the event's id) each decision is recorded first and its line carries
    ``event_id``. Returns a summary."""
    import json

    t0 = time.perf_counter()
    n = granted = 0
    with open(path, "w") as out:
        for d, frame in watcher.run_with_frames(source, max_frames):
            if record is not None:
                d["event_id"] = record(d, frame)
            out.write(json.dumps(d) + "\n")
            out.flush()
            n += 1
            granted += d["granted"]
            echo(f"t={d['time_s']:.1f}s track {d['track_id']}: {decision_line(d)}")
    wall = time.perf_counter() - t0
    return {"decisions": n, "granted": granted, "frames": watcher.frames, "wall_s": wall,
            "fps": watcher.frames / wall if wall > 0 else 0.0, "decisions_file": str(path),
            "reconnects": getattr(source, "reconnects", 0)}


def event_recorder(log, door: str, snapshot_dir: Path | None = None
                   ) -> Callable[[dict[str, Any], np.ndarray], int]:
    """``record`` for :func:`kiosk_to_file`: each decision as an event of ``door`` in the access
    log (a :class:`maskface.service.events.EventLog`), as ``POST /v1/access/check`` records
    one; with ``snapshot_dir`` (the config's snapshots on) the frame is kept as its photo."""

    def record(d: dict[str, Any], frame: np.ndarray) -> int:
        from maskface.service.events import save_snapshot

        snapshot = save_snapshot(frame, snapshot_dir) if snapshot_dir is not None else None
        person = d["person"] or {}
        used = (d.get("evidence") or {}).get("used") or []
        frames = {row["frame"]: row for row in (d.get("evidence") or {}).get("frames", [])}
        faces = frames[used[0]]["faces"] if used and used[0] in frames else (
            1 + len(d["ignored_faces"]) if person else 0)
        return log.record(d["decision"], [r["code"] for r in d["reasons"]],
                          person_id=person.get("person_id"), person_name=person.get("name"),
                          temperature=d["temperature"], mask=d["mask"],
                          score=person.get("score"), faces=faces,
                          liveness=(d["liveness"] or {}).get("score"), door=door,
                          snapshot=snapshot).id

    return record

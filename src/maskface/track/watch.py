"""Video analysis with tracking: the slow models run once per track, not once per frame.

Per frame: detect, then ByteTrack assigns each face a track id. Mask classification (batched
over the faces that need it) and recognition run only for tracks that are new, due for a
refresh, or whose box changed a lot; every other face shows its track's vote. Finished tracks
are written as JSON lines as soon as they end, so a long stream does not grow memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from maskface.jsonfile import write_json
from maskface.results import Face, Result
from maskface.track.source import FileSource, Frame, LiveSource
from maskface.track.state import TrackBook, TrackState
from maskface.track.tracker import FaceTracker

log = logging.getLogger(__name__)


@dataclass
class WatchStats:
    """Counters of one ``watch`` run."""

    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    #: times a lost live stream was reopened
    reconnects: int = 0
    faces: int = 0
    n_tracks: int = 0
    faces_classified: int = 0
    faces_recognized: int = 0
    wall_s: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames_processed / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fps"] = round(self.fps, 2)
        d["wall_s"] = round(self.wall_s, 3)
        d["stage_ms"] = {k: round(v, 1) for k, v in self.stage_ms.items()}
        return d


class VideoWatcher:
    """Runs a :class:`~maskface.pipeline.Pipeline`'s models over a frame source with tracking.

    Args:
        pipeline: supplies ``detector``, ``classifier`` (optional) and ``recognizer`` (optional).
        refresh_frames: re-run classification/recognition of a track every this many frames.
        refresh_iou: ... or sooner when the box's IoU with the box at the last refresh drops
            below this.
        lost_seconds: how long a face may be missed before its track ends.
    """

    def __init__(self, pipeline, refresh_frames: int = 15, refresh_iou: float = 0.5,
                 lost_seconds: float = 1.0):
        self.pipeline = pipeline
        self.refresh_frames = refresh_frames
        self.refresh_iou = refresh_iou
        self.lost_seconds = lost_seconds
        #: counters and live tracks of the current (or last) run
        self.stats = WatchStats()
        self.book = TrackBook(refresh_frames, refresh_iou)

    def run(self, source: FileSource | LiveSource, tracks_out: IO[str] | None = None,
            on_track_end: Callable[[TrackState], None] | None = None,
            max_frames: int | None = None) -> Iterator[tuple[Frame, Result]]:
        """Yield ``(frame, result)`` for every analysed frame; ended tracks go to ``tracks_out``
        (one JSON object per line) and ``on_track_end``. ``self.stats`` holds the counters."""
        fps = source.info.fps
        tracker = FaceTracker(fps=fps, lost_seconds=self.lost_seconds,
                              min_score=getattr(self.pipeline.detector, "score_threshold", 0.6))
        book = self.book = TrackBook(self.refresh_frames, self.refresh_iou)
        stats = self.stats = WatchStats()
        stage = {"detect": 0.0, "track": 0.0, "classify": 0.0, "recognize": 0.0}
        max_gap = max(1, round(self.lost_seconds * fps)) + 1
        t_start = time.perf_counter()

        def end_track(state: TrackState) -> None:
            stats.n_tracks += 1
            if tracks_out is not None:
                tracks_out.write(json.dumps(state.to_dict()) + "\n")
                tracks_out.flush()
            if on_track_end is not None:
                on_track_end(state)

        try:
            for frame in source:
                t0 = time.perf_counter()
                det = self.pipeline.detector.detect(frame.image)
                t1 = time.perf_counter()
                ids = tracker.update(det, timestamp=frame.time_s)
                t2 = time.perf_counter()
                faces = [Face(box=det.boxes[i], score=float(det.scores[i]),
                              landmarks=det.landmarks[i],
                              track_id=int(ids[i]) if ids[i] >= 0 else None)
                         for i in range(len(det))]
                states: dict[int, TrackState] = {}
                due: list[int] = []
                for i, face in enumerate(faces):
                    if face.track_id is None:
                        continue  # not yet confirmed: shown as a plain face
                    st = states[i] = book.see(face.track_id, frame.index, frame.time_s)
                    if book.needs_refresh(st, face.box, frame.index):
                        due.append(i)
                        book.refreshed(st, face.box, frame.index)
                self._refresh(frame, faces, states, due, stage)
                for i, st in states.items():
                    faces[i].mask, faces[i].identity = st.mask, st.identity
                stage["detect"] += (t1 - t0) * 1e3
                stage["track"] += (t2 - t1) * 1e3
                stats.frames_processed += 1
                stats.faces += len(faces)
                for st in [s for s in book.tracks.values() if frame.index - s.last_frame > max_gap]:
                    end_track(book.tracks.pop(st.track_id))
                yield frame, Result(faces=faces, image=frame.image, source=f"#{frame.index}",
                                    timings_ms={"total": (time.perf_counter() - t0) * 1e3})
                if max_frames is not None and stats.frames_processed >= max_frames:
                    break
        finally:
            for st in list(book):
                end_track(st)
            book.tracks.clear()
            stats.frames_read = source.read
            stats.frames_dropped = source.dropped
            stats.reconnects = getattr(source, "reconnects", 0)
            stats.wall_s = time.perf_counter() - t_start
            n = max(1, stats.frames_processed)
            stats.stage_ms = {k: v / n for k, v in stage.items()}

    def _refresh(self, frame: Frame, faces: list[Face], states: dict[int, TrackState],
                 due: list[int], stage: dict[str, float]) -> None:
        """Classify and recognise the faces whose tracks are due, in one batch each."""
        if not due:
            return
        t0 = time.perf_counter()
        classifier = self.pipeline.classifier
        if classifier is not None:
            boxes = np.stack([faces[i].box for i in due])
            for i, pred in zip(due, classifier.classify(frame.image, boxes)):
                states[i].add_mask(frame.index, pred)
            self.stats.faces_classified += len(due)
        t1 = time.perf_counter()
        recognizer = self.pipeline.recognizer
        if recognizer is not None:
            batch = [faces[i] for i in due]
            recognizer.identify(frame.image, batch)
            for i, face in zip(due, batch):
                if face.identity is not None:
                    states[i].add_identity(frame.index, face.identity)
            self.stats.faces_recognized += len(due)
        stage["classify"] += (t1 - t0) * 1e3
        stage["recognize"] += (time.perf_counter() - t1) * 1e3


def watch_to_files(watcher: VideoWatcher, source: FileSource | LiveSource, out: Path, stem: str,
                   max_frames: int | None = None, progress: bool = True) -> dict:
    """Run ``watcher`` and write ``<stem>.mp4`` (annotated), ``<stem>.tracks.jsonl`` and
    ``<stem>.summary.json`` under ``out``; return the summary."""
    from maskface.io.video import VideoWriter
    from maskface.progress import progress as bar_of

    out.mkdir(parents=True, exist_ok=True)
    video_path = out / f"{stem}.mp4"
    tracks_path = out / f"{stem}.tracks.jsonl"
    total = source.info.frames or None
    last_index = -1
    with open(tracks_path, "w") as tracks_out, VideoWriter(video_path, source.info.fps) as writer, \
            bar_of(total=total, unit="frame", desc=stem, leave=False, show=progress) as bar, \
            contextlib.closing(watcher.run(source, tracks_out, max_frames=max_frames)) as frames:
        # closing(): on Ctrl-C the generator's finally (which writes the open tracks) runs
        # while the tracks file is still open.
        for frame, result in frames:
            annotated = result.plot()
            # Repeat the frame for the frames dropped before it, so the video keeps the
            # source's timing.
            for _ in range(frame.index - last_index):
                writer.write(annotated)
            bar.update(frame.index - last_index)
            last_index = frame.index
    summary = {"source": str(getattr(source, "path", getattr(source, "source", "?"))),
               "fps_source": source.info.fps, "width": source.info.width,
               "height": source.info.height, "realtime": bool(getattr(source, "realtime", True)),
               "refresh_frames": watcher.refresh_frames, **watcher.stats.to_dict(),
               "video_file": str(video_path), "tracks_file": str(tracks_path)}
    write_json(out / f"{stem}.summary.json", summary, indent=2)
    return summary

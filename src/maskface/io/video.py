"""Video decoding and writing through OpenCV."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskface.errors import InputError
from maskface.locations import is_url


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    width: int
    height: int
    frames: int  # 0 when unknown (streams)


#: a network stream that does not open, or delivers nothing, within this long has failed (so a
#: live source can reopen it rather than wait for ever)
STREAM_TIMEOUT_MS = 10_000


def open_video(source: str | int | Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Open a video file, stream URL or camera index; raise InputError if it cannot be read."""
    src = int(source) if isinstance(source, str) and source.isdigit() else source
    if isinstance(src, str) and is_url(src):
        cap = cv2.VideoCapture(src, cv2.CAP_ANY, [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
    else:
        cap = cv2.VideoCapture(str(src) if isinstance(src, Path) else src)
    if not cap.isOpened():
        if isinstance(src, int):
            raise InputError(f"camera {src}: cannot open it (not connected, no permission, or "
                             "in use by another program)")
        if isinstance(src, str) and is_url(src):
            raise InputError(f"{source}: cannot open the stream (unreachable, wrong URL or "
                             "credentials, or a format FFmpeg does not read)")
        path = Path(src)
        if "%" not in str(path) and not path.exists():  # '%03d' names an image sequence
            raise InputError(f"{source}: no such file")
        if path.is_dir():
            raise InputError(f"{source}: is a folder, not a video")
        raise InputError(f"{source}: cannot open video (not a video, or a format FFmpeg "
                         "does not read)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    info = VideoInfo(
        fps=fps if 0 < fps < 1000 else 25.0,
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        frames=max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))),
    )
    return cap, info


def iter_frames(cap: cv2.VideoCapture, stride: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame)`` for every ``stride``-th frame; skipped frames are not decoded."""
    idx = 0
    while True:
        if idx % stride == 0:
            ok, frame = cap.read()
            if not ok:
                return
            yield idx, frame
        elif not cap.grab():
            return
        idx += 1


class VideoWriter:
    """MP4 writer that opens on the first frame (so its size is the frames' size)."""

    #: slowest frame rate written: FFmpeg's MPEG-4 writer refuses rates under ~0.01 fps
    #: (`detect --stride 10000` on a 10 fps clip); slower frames just show longer (10 s each),
    #: the JSON keeps their true times
    MIN_FPS = 0.1

    def __init__(self, path: Path, fps: float):
        self.path = Path(path)
        self.fps = max(float(fps), self.MIN_FPS)
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"),
                                           self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"{self.path}: cannot write video")
        self._writer.write(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

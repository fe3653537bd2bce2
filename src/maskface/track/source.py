"""Frame sources for ``maskface watch`` that keep up with the clock by dropping frames.

A live source (camera, RTSP/HTTP stream) is read by a background thread into a one-slot queue:
when the analysis is slower than the camera, the older frame is dropped, so the analysis always
gets the newest frame instead of falling further and further behind. A file can be read frame
by frame (offline, nothing dropped) or against a simulated source clock (``realtime``): frames
whose time has passed while the previous one was analysed are skipped without decoding.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskface.io.video import VideoInfo, open_video


@dataclass
class Frame:
    """One frame: its index in the source (dropped frames count too), its source time and pixels."""

    index: int
    time_s: float
    image: np.ndarray


class FileSource:
    """Frames of a video file; with ``realtime`` the file plays at its own frame rate: late
    frames are skipped and none is delivered before its time."""

    live = False

    def __init__(self, path: str | Path, realtime: bool = False):
        self.path = Path(path)
        self.realtime = realtime
        self._cap, self.info = open_video(self.path)
        self.read = 0
        self.dropped = 0

    def __iter__(self) -> Iterator[Frame]:
        fps = self.info.fps
        idx = 0
        t0 = None
        while True:
            if self.realtime:
                now = time.perf_counter()
                t0 = now if t0 is None else t0
                due = int((now - t0) * fps)
                while idx < due:  # their time is past: skip without decoding
                    if not self._cap.grab():
                        return
                    idx += 1
                    self.dropped += 1
                # Nor may a frame come before its time: a camera cannot deliver it earlier.
                wait = t0 + idx / fps - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            ok, image = self._cap.read()
            if not ok:
                return
            self.read += 1
            yield Frame(idx, idx / fps, image)
            idx += 1

    def close(self) -> None:
        self._cap.release()


class LiveSource:
    """A camera index or stream URL, read on a thread into a one-frame queue (newest wins)."""

    live = True

    def __init__(self, source: str | int, timeout_s: float = 10.0):
        self.source = source
        self.timeout_s = timeout_s
        self._cap, self.info = open_video(source)
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self.read = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._reader, name="maskface-reader", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        t0 = time.perf_counter()
        idx = 0
        try:
            while not self._stop.is_set():
                ok, image = self._cap.read()
                if not ok:
                    break
                self.read += 1
                frame = Frame(idx, time.perf_counter() - t0, image)
                idx += 1
                try:
                    self._queue.put_nowait(frame)
                except queue.Full:
                    try:  # the analysis has not taken the previous frame: drop it
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
                    self._queue.put_nowait(frame)  # single producer: there is room now
        finally:
            # End of stream: wait until the last frame is taken, unless we are closing.
            while True:
                try:
                    self._queue.put(None, timeout=0.2)
                    break
                except queue.Full:
                    if self._stop.is_set():
                        with contextlib.suppress(queue.Empty):
                            self._queue.get_nowait()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                frame = self._queue.get(timeout=self.timeout_s)
            except queue.Empty:
                return  # the stream stalled
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._cap.release()


def open_source(source: str, realtime: bool = False) -> FileSource | LiveSource:
    """A file path becomes a :class:`FileSource`; a camera index or URL a :class:`LiveSource`."""
    if Path(source).is_file():
        return FileSource(source, realtime=realtime)
    return LiveSource(int(source) if source.isdigit() else source)


__all__ = ["FileSource", "Frame", "LiveSource", "VideoInfo", "open_source"]

"""Frame sources for ``maskface watch`` that keep up with the clock by dropping frames.

A live source (camera, RTSP/HTTP stream) is read by a background thread into a one-slot queue:
when the analysis is slower than the camera, the older frame is dropped, so the analysis always
gets the newest frame instead of falling further and further behind. A door runs unattended, so
a lost stream (network blip, camera reboot) is reopened, waiting longer after each failed try,
instead of ending the watch. A file can be read frame
by frame (offline, nothing dropped) or against a simulated source clock (``realtime``): frames
whose time has passed while the previous one was analysed are skipped without decoding.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskface.errors import InputError
from maskface.io.video import VideoInfo, open_video

log = logging.getLogger(__name__)

#: seconds to wait before each try at reopening a lost live stream; the last one repeats
RECONNECT_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)


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
        # OpenCV "opens" many a non-video (a JPEG, a truncated file) and then reads nothing:
        # say so now, before any output is written, not as an empty watch that succeeded
        ok, first = self._cap.read()
        if not ok:
            self._cap.release()
            raise InputError(f"{self.path}: no frame could be decoded (not a video, or a "
                             "corrupt one)")
        self._first: np.ndarray | None = first
        self.read = 0
        self.dropped = 0

    def __iter__(self) -> Iterator[Frame]:
        fps = self.info.fps
        idx = 0
        t0 = None
        if self._first is not None:  # read when opened
            image, self._first = self._first, None
            t0 = time.perf_counter()
            self.read += 1
            yield Frame(0, 0.0, image)
            idx = 1
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
    """A camera index or stream URL, read on a thread into a one-frame queue (newest wins).

    When the stream is lost (a read fails), it is reopened after ``reconnect_delays`` seconds
    (longer after each failed try, the last delay repeating), at most ``max_reconnects`` tries
    in all (``None``: for ever; ``0``: the stream's end is the watch's end). Without
    reconnection a stream that delivers nothing for ``timeout_s`` also ends the watch.
    """

    live = True

    def __init__(self, source: str | int, timeout_s: float = 10.0,
                 max_reconnects: int | None = None,
                 reconnect_delays: Sequence[float] = RECONNECT_DELAYS):
        self.source = source
        self.timeout_s = timeout_s
        self.max_reconnects = max_reconnects
        self.reconnect_delays = tuple(reconnect_delays)
        self._cap, self.info = open_video(source)
        # A stream can open and then deliver nothing (a server that ignores range requests, a
        # camera that accepts the connection but sends no video): say so now, as FileSource
        # does, instead of reopening it every few seconds for ever with nothing to watch.
        ok, first = self._cap.read()
        if not ok:
            self._cap.release()
            raise InputError(f"{source}: opens but delivers no frames (not a video stream, "
                             "or the camera sends nothing)")
        self._first: np.ndarray | None = first
        #: reopenings since the last frame read: the back-off grows with it, so a stream that
        #: opens but breaks at once is not hammered every second
        self._lost_in_a_row = 0
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self.read = 0
        self.dropped = 0
        #: tries at reopening the stream so far, and how many succeeded
        self.reconnect_tries = 0
        self.reconnects = 0
        self._thread = threading.Thread(target=self._reader, name="maskface-reader", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        t0 = time.perf_counter()
        idx = 0
        try:
            while not self._stop.is_set():
                if self._first is not None:
                    ok, image, self._first = True, self._first, None
                else:
                    ok, image = self._cap.read()
                if not ok:
                    if self._stop.is_set() or not self._reopen():
                        break
                    continue
                self._lost_in_a_row = 0
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

    def _reopen(self) -> bool:
        """Reopen the lost stream (on the reader thread); False when out of tries or closing."""
        self._cap.release()
        while self.max_reconnects is None or self.reconnect_tries < self.max_reconnects:
            delay = self.reconnect_delays[min(self._lost_in_a_row,
                                              len(self.reconnect_delays) - 1)]
            log.warning("%s: stream lost; reconnecting in %g s", self.source, delay)
            if self._stop.wait(delay):
                return False
            self.reconnect_tries += 1
            self._lost_in_a_row += 1
            try:
                self._cap, _ = open_video(self.source)
            except InputError:
                continue
            self.reconnects += 1
            log.warning("%s: reconnected", self.source)
            return True
        return False

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                frame = self._queue.get(timeout=self.timeout_s)
            except queue.Empty:
                if self.max_reconnects == 0:
                    return  # the stream stalled and will not be reopened
                continue  # the reader reopens a stream whose read fails
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

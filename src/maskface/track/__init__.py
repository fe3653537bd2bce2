"""Video: face tracking so the slow models run once per track, and frame sources that keep up
with the clock by dropping frames."""

from maskface.track.source import FileSource, Frame, LiveSource, open_source
from maskface.track.state import TrackBook, TrackState
from maskface.track.tracker import FaceTracker
from maskface.track.watch import VideoWatcher, WatchStats, watch_to_files

__all__ = ["FaceTracker", "FileSource", "Frame", "LiveSource", "TrackBook", "TrackState",
           "VideoWatcher", "WatchStats", "open_source", "watch_to_files"]

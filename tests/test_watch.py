"""``maskface watch``: tracking on a real video made at test time from a dataroots photo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskface.results import MaskPrediction

PHOTO = "scenes/dataroots/images/34.jpg"  # two people in masks, faces ~110 px
N_FRAMES = 60
FPS = 25.0


def pan_zoom_video(photo: Path, path: Path, n: int = N_FRAMES, size=(640, 480)) -> Path:
    """A camera slowly panning across and zooming into ``photo`` (faces move and grow)."""
    img = cv2.imread(str(photo))
    h, w = img.shape[:2]
    out_w, out_h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
    assert writer.isOpened()
    for i in range(n):
        t = i / (n - 1)
        zoom = 1.0 + 0.25 * t
        cw, ch = w / zoom, h / zoom
        cx, cy = w / 2 + (t - 0.5) * (w - cw) * 0.8, h / 2
        sx, sy = out_w / cw, out_h / ch
        m = np.array([[sx, 0, -(cx - cw / 2) * sx], [0, sy, -(cy - ch / 2) * sy]])
        writer.write(cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT))
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(data_dir, tmp_path_factory) -> Path:
    return pan_zoom_video(data_dir / PHOTO, tmp_path_factory.mktemp("watch") / "pan.mp4")


class CountingClassifier:
    """Stands in for the mask classifier to count how many faces are sent to it."""

    def __init__(self):
        self.faces = 0
        self.calls = 0

    def classify(self, image, boxes):
        self.calls += 1
        self.faces += len(boxes)
        return [MaskPrediction("with_mask", 0.9, {"with_mask": 0.9, "without_mask": 0.1})
                for _ in boxes]


@pytest.fixture(scope="module")
def detector():
    from maskface.detect import create_detector

    return create_detector("yunet", input_size=640)


def test_one_stable_track_per_face_and_classification_once_per_refresh(video, detector):
    from maskface.pipeline import Pipeline
    from maskface.track import FileSource, VideoWatcher

    counter = CountingClassifier()
    watcher = VideoWatcher(Pipeline(detector=detector, classifier=counter), refresh_frames=20)
    ended = []
    src = FileSource(video)
    ids_per_frame = [[f.track_id for f in res.faces]
                     for _, res in watcher.run(src, on_track_end=ended.append)]
    src.close()
    assert len(ids_per_frame) == N_FRAMES and watcher.stats.frames_dropped == 0
    # Two faces in the photo: two tracks over the whole clip, no id switches or re-starts.
    assert sorted(len(ids) for ids in ids_per_frame[5:]) == [2] * (N_FRAMES - 5)
    assert len(ended) == 2
    assert all(st.n_frames >= N_FRAMES - 3 for st in ended)
    assert {i for ids in ids_per_frame[5:] for i in ids} == {st.track_id for st in ended}
    # Classified when each track starts, then every 20 frames or on a big box change:
    # far fewer classifications than faces shown.
    faces_shown = sum(len(ids) for ids in ids_per_frame)
    assert 2 <= counter.faces <= 2 * (N_FRAMES // 20 + 2) < faces_shown
    assert counter.faces == sum(len(st.mask_history) for st in ended)
    assert all(st.mask is not None and st.mask.label == "with_mask" for st in ended)


def test_watch_cli_writes_video_and_track_lines(video, tmp_path):
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    out = tmp_path / "out"
    res = CliRunner().invoke(load_commands(), ["watch", str(video), "--out", str(out),
                                               "--det-size", "640", "--refresh", "10"])
    assert res.exit_code == 0, res.output
    tracks = [json.loads(line) for line in (out / "pan.tracks.jsonl").read_text().splitlines()]
    assert len(tracks) == 2
    for tr in tracks:
        assert tr["last_frame"] - tr["first_frame"] >= N_FRAMES - 5
        assert tr["mask"]["label"] in ("with_mask", "without_mask", "mask_incorrect")
        assert 1 <= len(tr["mask_history"]) <= N_FRAMES // 10 + 3
    cap = cv2.VideoCapture(str(out / "pan.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
    cap.release()
    summary = json.loads((out / "pan.summary.json").read_text())
    assert summary["frames_processed"] == N_FRAMES and summary["n_tracks"] == 2


def test_watch_out_in_the_videos_own_folder_leaves_the_video_alone(video, tmp_path):
    """`watch clip.mp4 --out .` wrote the annotated video over the one it was reading."""
    import shutil

    from typer.testing import CliRunner

    from maskface.cli import load_commands

    clip = tmp_path / "pan.mp4"
    shutil.copy(video, clip)
    before = clip.read_bytes()
    res = CliRunner().invoke(load_commands(), ["watch", str(clip), "--out", str(tmp_path),
                                               "--max-frames", "5", "--classifier", "none"])
    assert res.exit_code == 0, res.output
    assert clip.read_bytes() == before
    assert (tmp_path / "pan_2.mp4").is_file() and (tmp_path / "pan_2.tracks.jsonl").is_file()


@pytest.mark.parametrize("kiosk", [False, True])
def test_a_file_that_is_not_a_video_is_a_one_line_error_before_any_output(tmp_path, kiosk):
    """OpenCV opens a few bytes named .jpg as an MJPEG 'video' and reads nothing: this was an
    empty watch that exited 0 and named an annotated video it never wrote."""
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    bad = tmp_path / "door.jpg"
    bad.write_bytes(b"x")
    out = tmp_path / "out"
    res = CliRunner().invoke(load_commands(), ["watch", str(bad), "--out", str(out)]
                             + (["--kiosk"] if kiosk else []))
    assert res.exit_code == 1, res.output
    assert f"error: {bad}: no frame could be decoded (not a video, or a corrupt one)" in \
        res.stderr.splitlines()
    assert not out.exists()


def test_realtime_file_source_drops_frames_instead_of_falling_behind(video):
    from maskface.track import FileSource

    src = FileSource(video, realtime=True)
    seen = []
    for frame in src:
        seen.append(frame.index)
        time.sleep(3 / FPS)  # an analysis three times slower than the video
    src.close()
    assert seen[0] == 0 and seen == sorted(set(seen))
    assert src.dropped > 0 and src.read + src.dropped == N_FRAMES
    assert len(seen) < N_FRAMES / 1.5


def test_realtime_file_source_does_not_run_ahead_of_its_clock(video):
    from maskface.track import FileSource

    src = FileSource(video, realtime=True)
    start = time.perf_counter()
    for frame in src:  # no analysis at all: the file must still play at 25 frames/s
        assert time.perf_counter() - start >= frame.time_s - 1e-3
    elapsed = time.perf_counter() - start
    src.close()
    assert src.read + src.dropped == N_FRAMES
    assert elapsed >= (N_FRAMES - 1) / FPS - 1e-3


def test_live_source_keeps_only_the_newest_frame(video):
    from maskface.track import LiveSource

    # a file read as fast as it decodes stands in for a camera; its end is the stream's end
    src = LiveSource(str(video), max_reconnects=0)
    seen = []
    for frame in src:
        seen.append(frame.index)
        time.sleep(0.05)
    src.close()
    assert seen == sorted(set(seen))
    assert src.dropped > 0 and len(seen) + src.dropped == src.read == N_FRAMES


def test_live_source_reopens_a_lost_stream(video, caplog):
    """A camera whose stream ends (the file's end stands in for a network drop) is reopened,
    and the frames go on with rising indices; out of tries, the watch ends."""
    from maskface.track import LiveSource

    src = LiveSource(str(video), max_reconnects=2, reconnect_delays=(0.01,))
    with caplog.at_level("WARNING", logger="maskface.track.source"):
        seen = [frame.index for frame in src]
    src.close()
    assert (src.reconnect_tries, src.reconnects) == (2, 2)
    assert src.read == 3 * N_FRAMES and len(seen) + src.dropped == src.read
    assert seen == sorted(set(seen)) and seen[-1] >= 2 * N_FRAMES
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs.count(f"{video}: reconnected") == 2
    assert f"{video}: stream lost; reconnecting in 0.01 s" in msgs


def test_live_source_gives_up_on_a_stream_that_cannot_be_reopened(video, tmp_path):
    from maskface.track import LiveSource

    copy = tmp_path / "camera.mp4"
    copy.write_bytes(video.read_bytes())
    src = LiveSource(str(copy), max_reconnects=3, reconnect_delays=(0.01, 0.02))
    copy.unlink()  # the camera is gone: every reopening fails
    n = sum(1 for _ in src)
    src.close()
    assert n > 0 and (src.reconnect_tries, src.reconnects) == (3, 0)


def test_a_stream_that_opens_but_breaks_at_once_is_retried_ever_more_slowly(video, tmp_path,
                                                                             caplog):
    """A stream that reopens fine but delivers nothing was reopened every second for ever
    (the back-off restarted at each successful open); one that delivers nothing from the start
    is an error at once."""
    from maskface.errors import InputError
    from maskface.track import LiveSource

    camera = tmp_path / "camera.jpg"  # OpenCV opens any bytes named .jpg and reads nothing
    camera.write_bytes(b"no frames here")
    with pytest.raises(InputError, match="opens but delivers no frames"):
        LiveSource(str(camera))
    camera.write_bytes(video.read_bytes())  # an MP4 under that name plays
    src = LiveSource(str(camera), max_reconnects=3, reconnect_delays=(0.01, 0.02, 0.05))
    camera.write_bytes(b"no frames here")  # ...and then opens but sends nothing
    with caplog.at_level("WARNING", logger="maskface.track.source"):
        n = sum(1 for _ in src)
    src.close()
    assert n > 0 and (src.reconnect_tries, src.reconnects) == (3, 3)
    waits = [r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records
             if "reconnecting in" in r.getMessage()]
    assert waits == ["0.01 s", "0.02 s", "0.05 s"]


def test_a_camera_or_stream_that_does_not_open_says_what_to_check(tmp_path):
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    for source, said in (("57", "error: camera 57: cannot open it (not connected"),
                         ("rtsp://127.0.0.1:1/door", "error: rtsp://127.0.0.1:1/door: cannot "
                          "open the stream (unreachable, wrong URL or credentials"),
                         (str(tmp_path / "door.mp4"), f"error: {tmp_path / 'door.mp4'}: no "
                          "such file"),
                         (str(tmp_path), f"error: {tmp_path}: is a folder, not a video")):
        res = CliRunner().invoke(load_commands(), ["watch", source, "--out", str(tmp_path)])
        assert res.exit_code == 1, res.output
        assert any(line.startswith(said) for line in res.stderr.splitlines()), res.stderr


def test_a_video_that_does_not_open_gets_one_line_not_ffmpegs_warnings_too(tmp_path):
    """OpenCV and FFmpeg write their own warnings straight to the process's stderr (no
    CliRunner sees them); the CLI's one line already says it."""
    bad = tmp_path / "door.mp4"
    bad.write_bytes(b"\x00not a video" * 400)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    for source, said in ((str(bad), f"error: {bad}: cannot open video"),
                         ("57", "error: camera 57: cannot open it")):
        res = subprocess.run([sys.executable, "-m", "maskface.cli", "watch", source, "--out",
                              str(tmp_path)], capture_output=True, text=True, env=env,
                             timeout=120)
        assert res.returncode == 1
        assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith(said), res.stderr


def test_tracks_carry_the_identity_of_their_face(video, detector, tmp_path):
    """Enrol the two faces of the first frame, then each track must be recognised as its own
    person (recognition runs once per track refresh, and the track votes)."""
    recognize = pytest.importorskip("maskface.recognize")
    from maskface.gallery import Gallery
    from maskface.pipeline import Pipeline
    from maskface.results import Face
    from maskface.track import FileSource, VideoWatcher

    embedder = recognize.create_embedder("sface")
    gallery = Gallery(tmp_path / "people.db", model=embedder.name, dim=embedder.dim)
    recognizer = recognize.Recognizer(embedder, gallery)
    cap = cv2.VideoCapture(str(video))
    ok, first = cap.read()
    cap.release()
    assert ok
    det = detector.detect(first)
    assert len(det) == 2
    names = {}
    for i in np.argsort(det.boxes[:, 0]):  # left to right
        face = Face(box=det.boxes[i], score=float(det.scores[i]), landmarks=det.landmarks[i])
        name = "left" if not names else "right"
        gallery.enroll(name, recognizer.embed(first, [face]))
        names[name] = float(det.boxes[i, 0])

    watcher = VideoWatcher(Pipeline(detector=detector, classifier=None, recognizer=recognizer),
                           refresh_frames=15)
    ended = []
    src = FileSource(video)
    for _ in watcher.run(src, on_track_end=ended.append):
        pass
    src.close()
    gallery.close()
    assert len(ended) == 2
    assert watcher.stats.faces_recognized < watcher.stats.faces / 4
    by_name = {st.identity.name: st for st in ended if st.identity and st.identity.known}
    assert set(by_name) == {"left", "right"}
    assert by_name["left"].refresh_box[0] < by_name["right"].refresh_box[0]
    assert all(len(st.identity_history) >= 2 for st in ended)

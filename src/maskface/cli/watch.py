"""``maskface watch``: faces in a video file, stream or camera, tracked across frames."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskface.cli.apps import app
from maskface.cli.common import (
    ClassifierChoice,
    DetectorName,
    DetectorSize,
    fail,
    output_folder,
    output_stem,
    user_errors,
)

#: what ``watch`` writes: the annotated video, the tracks, the summary, the door's decisions
OUTPUT_SUFFIXES = (".mp4", ".tracks.jsonl", ".summary.json", ".decisions.jsonl")


def _stem(source: str, out: Path) -> str:
    path = Path(source)
    if path.is_file():  # a file named "7" is a file, not camera 7
        return output_stem(path.stem, out, OUTPUT_SUFFIXES, {path.resolve()}, set())
    return f"camera{source}" if source.isdigit() else "stream"


@app.command()
@user_errors
def watch(
    source: Annotated[str, typer.Argument(
        help="Video file, stream URL (rtsp://, http://) or camera index (0, 1, ...).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")
                   ] = Path("maskface-out/watch"),
    refresh: Annotated[int, typer.Option(
        min=1, help="Re-classify/re-identify a tracked face every N frames (and whenever its "
                    "box changes a lot).")] = 15,
    realtime: Annotated[bool, typer.Option(
        help="Files: play at the video's own frame rate and drop the frames the analysis "
             "cannot keep up with (live sources always do).")] = False,
    detector: DetectorName = "yunet",
    det_size: DetectorSize = None,
    classifier: ClassifierChoice = "default",
    db: Annotated[str | None, typer.Option(
        "--db", "--gallery", help="Gallery of enrolled people (an SQLite file or a "
        "postgresql:// URL, as for 'maskface enroll'): also recognise each tracked face.")
                  ] = None,
    model: Annotated[str | None, typer.Option(
        "--model", "--embedder", help="Embedder for --db (default: the one the gallery was "
        "made with).")] = None,
    max_frames: Annotated[int | None, typer.Option(
        min=1, help="Stop after analysing this many frames (live sources run until ended).")
                          ] = None,
    kiosk: Annotated[bool, typer.Option(
        "--kiosk", help="Make door decisions: one per person at the door, over their best "
                        "frames (liveness, mask, identity with --db); writes "
                        "<stem>.decisions.jsonl.")] = False,
    config: Annotated[Path | None, typer.Option(
        help="--kiosk: service config file whose \\[policy] applies (default policy if none).")
                      ] = None,
    door: Annotated[str | None, typer.Option(
        help="--kiosk with --db: this camera is that door (as a kiosk key's label names one): "
             "each decision is recorded in the store's access log under it, with the door's "
             "rules (its own policy, else the building's) and its pushed temperature reading.")
                    ] = None,
) -> None:
    """Track faces through a video or stream; write an annotated video and per-track JSON lines.

    Mask classification (and, with --db, recognition) runs once per track and is refreshed
    every --refresh frames or when the face's box changes a lot, not on every frame.
    """
    from maskface.cli.recognition import open_gallery
    from maskface.detect import video_detector
    from maskface.pipeline import Pipeline
    from maskface.recognize import Recognizer
    from maskface.track import VideoWatcher, open_source, watch_to_files

    if door is not None and not (kiosk and db is not None):
        fail("--door needs --kiosk and --db (the store whose access log and rules it uses)")
    kwargs = {"input_size": det_size} if det_size else {}
    recognizer = None
    if db is not None:
        gallery, embedder = open_gallery(db, model, for_writing=False)
        recognizer = Recognizer(embedder, gallery)
    pipe = Pipeline(detector=video_detector(detector, **kwargs),
                    classifier=None if classifier == "none" else classifier,
                    recognizer=recognizer)
    src = open_source(source, realtime=realtime)
    if kiosk:
        _kiosk(pipe, src, out, _stem(source, out), config, max_frames, door)
        return
    try:
        summary = watch_to_files(VideoWatcher(pipe, refresh_frames=refresh), src, out,
                                 _stem(source, out), max_frames=max_frames)
    finally:  # Ctrl-C: user_errors says "interrupted" and exits 130
        src.close()
    typer.echo(f"{summary['frames_processed']} frames analysed "
               f"({summary['frames_dropped']} dropped to keep up), {summary['n_tracks']} tracks, "
               f"{summary['faces_classified']} mask classifications for {summary['faces']} "
               f"faces, {summary['fps']:.1f} frames/s"
               + (f", stream reopened {summary['reconnects']}x" if summary['reconnects'] else ""))
    typer.echo(f"annotated video: {summary['video_file']}")
    typer.echo(f"tracks (JSON lines): {summary['tracks_file']}")


def _kiosk(pipe, src, out: Path, stem: str, config: Path | None,
           max_frames: int | None, door: str | None = None) -> None:
    from maskface.liveness import LivenessChecker
    from maskface.service.config import load_config
    from maskface.track.kiosk import KioskWatcher, event_recorder, kiosk_to_file

    cfg = load_config(config)
    liveness = LivenessChecker(pipe.detector.name)
    record = None
    if door is None:
        watcher = KioskWatcher(pipe, liveness, cfg.policy)
    else:  # one of the building's doors: its rules, its sensor, its access log
        from maskface.service.auth import check_label
        from maskface.service.events import EventLog
        from maskface.service.settings import SettingsStore
        from maskface.service.temperature import create_source

        door = check_label(door)
        store = pipe.recognizer.gallery.db
        settings = SettingsStore(store)
        t = cfg.temperature
        sensor = create_source(t.source, t.max_age_s, t.simulated_mean, t.simulated_sd, t.seed,
                               store)

        def policy_now():
            return settings.in_force(door, cfg.policy)[0]

        def temperature_now():
            reading = sensor.read(door)
            return reading.celsius if reading else None

        watcher = KioskWatcher(pipe, liveness, policy_now=policy_now,
                               temperature_now=temperature_now)
        snapshots = (cfg.with_db(store.location).snapshot_dir if cfg.snapshots.enabled
                     else None)  # where the service keeps them, for one retention to prune
        record = event_recorder(EventLog(store), door, snapshots)
    output_folder(out)
    try:
        summary = kiosk_to_file(watcher, src, out / f"{stem}.decisions.jsonl", echo=typer.echo,
                                max_frames=max_frames, record=record)
    finally:  # Ctrl-C: user_errors says "interrupted" and exits 130
        src.close()
    typer.echo(f"{summary['decisions']} decisions ({summary['granted']} granted) over "
               f"{summary['frames']} frames, {summary['fps']:.1f} frames/s"
               + (f", stream reopened {summary['reconnects']}x" if summary['reconnects'] else ""))
    typer.echo(f"decisions (JSON lines): {summary['decisions_file']}"
               + (f"; recorded as door {door!r} in the access log ('maskface events --door')"
                  if door else ""))

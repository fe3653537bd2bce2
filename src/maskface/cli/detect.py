"""``maskface detect``, ``maskface demo`` and ``maskface models``."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from maskface.cli.apps import app
from maskface.cli.common import fail, output_folder, output_stem, progress, user_errors
from maskface.detect import DEFAULT_DETECTOR
from maskface.errors import MaskfaceError
from maskface.jsonfile import write_json

DEFAULT_OUT = Path("maskface-out")


#: what ``detect`` writes per input: the annotated image or video and its JSON
OUTPUT_SUFFIXES = (".jpg", ".mp4", ".json")


def run_detect(inputs: list[str], out: Path, detector, classifier: str | None,
               stride: int, print_json: bool, quiet: bool = False,
               liveness: bool = False) -> int:
    """Process every input (``detector``: a name or a built detector); return the number
    that failed."""
    from tqdm import tqdm

    from maskface.io.sources import expand_sources
    from maskface.pipeline import Pipeline

    sources = expand_sources(inputs)
    if not sources:
        fail("no inputs given")
    output_folder(out)
    pipe = Pipeline(detector=detector, classifier=classifier, liveness=liveness)
    failures: list[str] = []
    n_faces = n_ok = 0
    used: set[str] = set()
    inputs = {src.path.resolve() for src in sources if not src.error}
    bar = progress(sources, desc="detect", unit="file", disable=quiet or len(sources) < 2,
                   leave=False)
    for src in bar:
        if src.error:
            failures.append(f"{src.path}: {src.error}")
            tqdm.write(f"error: {src.path}: {src.error}", file=sys.stderr)
            continue
        stem = output_stem(src.path.stem, out, OUTPUT_SUFFIXES, inputs, used)
        try:
            if src.kind == "video":
                summary = _detect_video(pipe, src.path, out, stem, stride)
                n_faces += summary["faces"]
                record = summary
            else:
                result = pipe.analyze(src.path)
                result.save(out / f"{stem}.jpg")
                record = result.to_dict()
                write_json(out / f"{stem}.json", record, indent=2)
                n_faces += len(result.faces)
            n_ok += 1
            if print_json:
                typer.echo(json.dumps(record))
        except MaskfaceError as exc:
            failures.append(str(exc))
            tqdm.write(f"error: {exc}", file=sys.stderr)
    if not quiet:
        typer.echo(f"{n_ok} of {len(sources)} inputs processed, {n_faces} faces; "
                   f"outputs in {out}/", err=print_json)
        if sources.skipped:
            typer.echo(sources.skipped_note(), err=print_json)
        if failures:
            typer.echo(f"{len(failures)} failed:", err=True)
            for f in failures:
                typer.echo(f"  {f}", err=True)
    return len(failures)


def _detect_video(pipe, path: Path, out: Path, stem: str, stride: int) -> dict:
    from maskface.io.video import VideoWriter, iter_frames, open_video

    cap, info = open_video(path)
    frames, n_faces = [], 0
    total = info.frames // stride if info.frames else None
    try:
        with VideoWriter(out / f"{stem}.mp4", info.fps / stride) as writer:
            for idx, frame in progress(iter_frames(cap, stride), total=total, desc=path.name,
                                       unit="frame", leave=False):
                result = pipe.analyze_array(frame, source=f"{path}#{idx}")
                writer.write(result.plot())
                n_faces += len(result.faces)
                frames.append({"frame": idx, "time_s": round(idx / info.fps, 3),
                               "faces": [f.to_dict() for f in result.faces]})
    finally:
        cap.release()
    if not frames:
        raise MaskfaceError(f"{path}: no frame could be decoded")
    record = {"source": str(path), "fps": info.fps, "width": info.width,
              "height": info.height, "stride": stride, "frames": frames, "faces": n_faces}
    write_json(out / f"{stem}.json", record, indent=1)
    return record


@app.command()
@user_errors
def detect(
    inputs: Annotated[list[str], typer.Argument(
        help="Images, folders (searched recursively), globs or video files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = DEFAULT_OUT,
    detector: Annotated[str, typer.Option(help="retinaface, yunet or mtcnn.")
                        ] = DEFAULT_DETECTOR,
    classifier: Annotated[str, typer.Option(
        help="Mask classifier ONNX file, 'default', or 'none' to skip.")] = "default",
    stride: Annotated[int, typer.Option(min=1, help="Video: process every N-th frame.")] = 1,
    json_: Annotated[bool, typer.Option("--json", help="Also print one JSON line per input.")
                     ] = False,
    liveness: Annotated[bool, typer.Option(
        "--liveness", help="Also score each face live/spoof (presentation-attack check).")
                        ] = False,
    profile: Annotated[str | None, typer.Option(
        help="Detection profile instead of --detector: kiosk (YuNet 640), photo (the "
        "default) or crowd (small faces in crowd photos; slower on photos with small "
        "faces).")] = None,
    no_zoom: Annotated[bool, typer.Option(
        "--no-zoom", help="No 3x small-face pass (RetinaFace runs it on photos or frames with "
        "three or more faces under 40 px; crowd on those with one): faster on crowds.")] = False,
) -> None:
    """Find faces and their mask state; write annotated images/videos and one JSON per input."""
    det = detector
    off = {"small_face_zoom": None} if no_zoom else {}
    if profile is not None:
        from maskface.detect import profile_detector

        det = profile_detector(profile, **off)
    elif no_zoom:
        from maskface.detect import create_detector

        det = create_detector(detector, **off)
    failed = run_detect(inputs, out, det, None if classifier == "none" else classifier,
                        stride, json_, liveness=liveness)
    if failed:
        raise typer.Exit(1)


DEMO_IMAGES = ("astronaut.jpg", "astronaut_masked.jpg")


def demo_image(name: str = DEMO_IMAGES[0]) -> Path:
    """A built-in example photo (public domain; the masked one drawn by ``maskface synth``)."""
    return Path(str(resources.files("maskface") / "assets" / name))


@app.command()
@user_errors
def demo(out: Annotated[Path, typer.Option("--out", "-o")] = Path("maskface-out/demo")) -> None:
    """Run the whole pipeline on the built-in example photos and say where the outputs are;
    then enrol the bare-faced photo in a throw-away gallery and take both to the door."""
    from maskface.pipeline import Pipeline

    output_folder(out)
    pipe = Pipeline()
    results = {}
    for name in DEMO_IMAGES:
        result = results[name] = pipe.analyze(demo_image(name))
        annotated = result.save(out / name)
        js = (out / name).with_suffix(".json")
        js.write_text(result.to_json())
        typer.echo(f"{name}: {len(result.faces)} face(s) in {result.timings_ms['total']:.0f} ms")
        for face in result.faces:
            mask = face.mask.label if face.mask else "?"
            prob = face.mask.probability if face.mask else 0.0
            box = ", ".join(f"{v:.0f}" for v in face.box)
            typer.echo(f"  face at [{box}] score {face.score:.2f}: {mask} ({prob:.1%})")
        typer.echo(f"  annotated image: {annotated}")
        typer.echo(f"  JSON result:     {js}")
    _demo_door(pipe, results[DEMO_IMAGES[0]])


def _demo_door(pipe, bare) -> None:
    """The door, as the service decides it (default policy, liveness and quality on), for both
    photos, with the bare-faced one enrolled in a temporary gallery."""
    import tempfile

    from maskface.gallery import Gallery
    from maskface.io import load_image
    from maskface.pipeline import Pipeline
    from maskface.recognize import Recognizer, create_embedder
    from maskface.service.config import Policy
    from maskface.service.decision import decide, decision_line

    name = "Eileen Collins"
    embedder = create_embedder("default")
    with tempfile.TemporaryDirectory() as tmp, \
            Gallery(Path(tmp) / "demo.db", model=embedder.name, dim=embedder.dim) as gallery:
        image = load_image(demo_image(DEMO_IMAGES[0]))
        gallery.enroll(name, Recognizer(embedder).embed(image, bare.faces[:1]))
        door = Pipeline(detector=pipe.detector, classifier=pipe.classifier, liveness=True,
                        quality=True, recognizer=Recognizer(embedder, gallery))
        typer.echo(f"door (default policy: mask required, liveness and quality checked; "
                   f"{name} enrolled from {DEMO_IMAGES[0]}, no mask):")
        for photo in reversed(DEMO_IMAGES):
            result = door.analyze(demo_image(photo))
            d = decide(result.faces, Policy(), image_shape=result.image.shape[:2])
            typer.echo(f"  {photo}: {decision_line(d.to_dict())}")


@app.command()
def models() -> None:
    """List the registered models, where their files are and whether their digests match."""
    from maskface.models import describe

    bad = 0
    rows = describe()
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        ok = row["status"] == "ok"
        bad += not ok
        typer.echo(f"{'ok ' if ok else 'BAD'} {row['name']:<{width}} {row['description']}")
        typer.echo(f"    {row['path']}" + ("" if ok else f"\n    {row['status']}"))
    if bad:
        raise typer.Exit(1)

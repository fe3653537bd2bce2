"""``maskface bench``: how fast is the pipeline, stage by stage, against the seeds' baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskface.cli.apps import app
from maskface.cli.common import DetectorName, DetectorSize, FileOption, user_errors
from maskface.jsonfile import write_json


@app.command()
@user_errors
def bench(
    images: Annotated[Path | None, typer.Option(
        help="Folder of photos to time on (fitted to --size); default: a built-in set of the "
             "astronaut photo with 1-3 faces.")] = None,
    report: Annotated[Path, FileOption(help="JSON report; a .md table is written beside it.")
                      ] = Path("maskface-out/bench.json"),
    repeats: Annotated[int, typer.Option(min=1, help="Timed rounds over the image set.")] = 5,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed rounds first.")] = 1,
    size: Annotated[str, typer.Option(help="Frame size WIDTHxHEIGHT.")] = "640x480",
    batch: Annotated[int, typer.Option(min=1, help="Frames per batch in the batched run.")] = 8,
    detector: DetectorName = "yunet",
    det_size: DetectorSize = None,
    classifier: Annotated[str, typer.Option(help="Mask classifier ONNX or 'default'.")
                          ] = "default",
    against: Annotated[str | None, typer.Option(
        help="Also time detect+classify with this classifier, in pairs with --classifier on "
             "the same frames, and report the ratio with a 95 % interval (e.g. "
             "'mask_classifier': what the three-way default costs the door).")] = None,
    embedder: Annotated[str, typer.Option(
        help="Embedder: 'default', 'sface', an ONNX file, or 'none' to skip recognition.")
                        ] = "default",
    gallery_size: Annotated[int, typer.Option(min=1, help="People in the synthetic gallery.")
                            ] = 100,
    baseline: Annotated[bool, typer.Option(help="Also time the seeds' baseline pipeline.")
                        ] = True,
    scenes: Annotated[Path | None, typer.Option(
        help="Labelled scenes (dataroots or VOC layout) for the accuracy check.")] = None,
    scenes_limit: Annotated[int, typer.Option(min=1, help="Scene images to use.")] = 60,
    threads: Annotated[int | None, typer.Option(
        min=1, help="Threads per model (sets MASKFACE_THREADS); default: all cores.")] = None,
    streams: Annotated[int | None, typer.Option(
        min=1, help="Parallel single-threaded pipelines in the throughput runs, for ours and "
                    "the baseline alike; default: one per core; 1 skips them.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many --images.")] = 30,
    profile: Annotated[str | None, typer.Option(
        help="Detection profile instead of --detector/--det-size: kiosk, photo or crowd.")
    ] = None,
) -> None:
    """Time decode/detect/align/classify/embed/match and end to end, beside the baseline."""
    from maskface.bench import BenchConfig, run_bench, to_markdown
    from maskface.bench.images import builtin_images, folder_images, parse_size

    profile_options: dict = {}
    if profile is not None:
        from maskface.detect import PROFILES, profile_detector

        profile_detector(profile)  # a clear error for an unknown name
        detector, profile_options = PROFILES[profile]
    wh = parse_size(size)
    frames = folder_images(images, wh, limit) if images else builtin_images(wh)
    cfg = BenchConfig(
        images=frames, image_source=str(images) if images else "built-in (astronaut, 1-3 faces)",
        masked_images=None if images else builtin_images(wh, masked=True),
        repeats=repeats, warmup=warmup, batch=batch, detector=detector, det_size=det_size,
        classifier=classifier, against=against, embedder=None if embedder == "none" else embedder,
        gallery_size=gallery_size, baseline=baseline, scenes=scenes, scenes_limit=scenes_limit,
        threads=threads, streams=streams, detector_options=profile_options,
    )
    result = run_bench(cfg, progress=lambda msg: typer.echo(f"timing {msg}…", err=True))
    table = to_markdown(result)
    report.parent.mkdir(parents=True, exist_ok=True)
    write_json(report, result, indent=2)
    report.with_suffix(".md").write_text(table)
    typer.echo(table)
    typer.echo(f"report: {report} (table: {report.with_suffix('.md')})")

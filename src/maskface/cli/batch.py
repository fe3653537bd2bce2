"""``maskface batch``: many images on Ray (this machine or a cluster), resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskface.cli.apps import app
from maskface.cli.common import ClassifierChoice, DetectorName, DetectorSize, user_errors


@app.command()
@user_errors
def batch(
    inputs: Annotated[list[str], typer.Argument(
        help="Folders (searched recursively), globs, image files, or .txt lists of paths.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (results/, "
                                      "manifest.jsonl, summary-*.json).")],
    ray: Annotated[str | None, typer.Option(
        "--ray", help="Ray cluster to join: 'auto' (a `ray start` node on this machine) or "
                      "ray://HOST:10001; default: a local Ray on this machine.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or jsonl.")] = "parquet",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per model batch.")] = 16,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Most worker actors (one model load each); default: CPU cores.")] = None,
    detector: DetectorName = "yunet",
    det_size: DetectorSize = None,
    classifier: ClassifierChoice = "default",
) -> None:
    """Detect faces and classify masks in every image; inputs done before are skipped (failed
    ones are tried again)."""
    from maskface.batch import run_batch

    summary = run_batch(inputs, out, ray_address=ray, fmt=fmt, batch_size=batch_size,
                        workers=workers, detector=detector, det_size=det_size,
                        classifier=None if classifier == "none" else classifier)
    unusable = summary.unusable_inputs
    typer.echo(f"{summary.inputs} image{'' if summary.inputs == 1 else 's'}: "
               f"{summary.processed} processed, {summary.skipped} "
               f"skipped (done before), {summary.failed} failed"
               + (f", {summary.retried} retried (failed before)" if summary.retried else "")
               + f"; {summary.faces} faces "
               f"{summary.mask_labels}; {summary.images_per_s:.1f} images/s "
               f"({summary.wall_s:.1f} s)"
               + (f"; {len(unusable)} other input{'' if len(unusable) == 1 else 's'} not "
                  "usable" if unusable else ""))
    for reason in summary.failures[:20]:
        typer.echo(f"  failed: {reason}", err=True)
    for reason in unusable[:20]:
        typer.echo(f"  not usable: {reason}", err=True)
    if len(summary.failures) > 20:
        typer.echo(f"  … and {len(summary.failures) - 20} more (see {out}/manifest.jsonl)",
                   err=True)
    if summary.passed_over:
        typer.echo(f"  {summary.passed_over}", err=True)
    typer.echo(f"results: {out / 'results'}; summary: {out}/summary-{summary.run_id}.json")
    if summary.failed or summary.unusable_inputs:
        raise typer.Exit(1)

"""``maskface synth`` (draw masks on a folder of faces) and ``maskface eval synth``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskface.cli.apps import app, eval_app
from maskface.cli.common import output_folder, progress, user_errors
from maskface.errors import InputError

DEFAULT_TYPES = "surgical,n95,kn95,cloth"


def _bar(desc: str):
    def wrap(it, total):
        return progress(it, total=total, desc=desc, unit="img")

    return wrap


def _print_check(report: dict) -> None:
    s = report["summary"]
    typer.echo(f"check on {report['images_checked']} images "
               f"({s['correctly_worn_images']} worn correctly): detector "
               f"(input {report['detector_input_size']} px) finds {s['detection_rate']:.1%} "
               f"(unmasked sources: {s['source_detection_rate']:.1%}), classifier says "
               f"with_mask for {s['with_mask_rate']:.1%} (detected and with_mask: "
               f"{s['detected_and_with_mask_rate']:.1%})")
    for wear, e in report["by_wear"].items():
        if wear != "correct":
            rates = ", ".join(f"{k} {v:.1%}" for k, v in e["label_rates"].items())
            typer.echo(f"  {wear}: {e['images']} images, detected {e['detection_rate']:.1%}; "
                       f"{rates}")
    typer.echo(f"report: {report['report_path']}")


@app.command()
@user_errors
def synth(
    in_dir: Annotated[Path, typer.Argument(help="Folder of face photos (searched recursively).")],
    out_dir: Annotated[Path, typer.Argument(help="Output folder (same sub-folders as IN).")],
    types: Annotated[str, typer.Option(
        help="Comma-separated mask types: surgical, n95, kn95, cloth.")] = DEFAULT_TYPES,
    per_image: Annotated[int, typer.Option(min=1, help="Masked versions per photo.")] = 1,
    # No min/max here: Typer's range check lets NaN through to a misleading message;
    # SynthConfig checks it.
    incorrect_rate: Annotated[float, typer.Option(
        help="Share of masks worn incorrectly (nose exposed or chin only), 0 to 1.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Same seed, byte-identical outputs.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    templates: Annotated[Path | None, typer.Option(
        help="Use MaskTheFace-format templates (folder with masks.cfg) instead of drawing.")
    ] = None,
    preview: Annotated[Path | None, typer.Option(
        help="Write a before/after contact sheet PNG here.")] = None,
    limit: Annotated[int | None, typer.Option(
        min=1, help="Only this many photos, evenly spread over the folder.")] = None,
    by_class: Annotated[bool, typer.Option(
        help="Write OUT/with_mask/ and OUT/mask_incorrect/ (flattened names) for classifier "
             "training, instead of IN's sub-folders.")] = False,
    face_crop: Annotated[bool, typer.Option(
        help="Write the classifier's inference crop around the detected face (1.15 x the "
             "detector box) instead of the whole photo; with --by-class also the bare face "
             "as OUT/without_mask/.")] = False,
    check: Annotated[bool, typer.Option(
        help="Afterwards measure detector and classifier rates (see 'maskface eval synth').")
    ] = False,
) -> None:
    """Draw synthetic masks on every face photo in IN; write OUT/manifest.csv."""
    from maskface.synth.batch import MANIFEST, SKIPPED, SynthConfig, synthesize

    cfg = SynthConfig(types=tuple(t.strip().lower() for t in types.split(",") if t.strip()),
                      per_image=per_image, incorrect_rate=incorrect_rate, seed=seed,
                      templates=templates, by_class=by_class, face_crop=face_crop)
    if templates is not None and not templates.is_dir():
        raise InputError(f"{templates}: not a folder")
    if preview is not None:
        from maskface.draw import check_image_path

        check_image_path(preview)  # here, not after all the images are written
    output_folder(out_dir, "OUT")
    summary = synthesize(in_dir, out_dir, cfg, workers=workers, limit=limit,
                         progress=_bar("synth"))
    if summary.removed:
        typer.echo(f"removed the {summary.removed} images of the previous run in {out_dir} "
                   f"(listed in its {MANIFEST}) before writing")
    typer.echo(f"{summary.outputs} masked images from {summary.inputs - len(summary.skipped)} of "
               f"{summary.inputs} photos in {summary.seconds:.1f} s "
               f"({summary.images_per_second:.1f} photos/s, {workers} worker(s)); "
               f"manifest: {out_dir / MANIFEST}")
    if summary.skipped:
        typer.echo(f"{len(summary.skipped)} skipped (listed in {out_dir / SKIPPED}):", err=True)
        for src, reason in summary.skipped[:20]:
            typer.echo(f"  {src}: {reason}", err=True)
        if len(summary.skipped) > 20:
            typer.echo(f"  ... and {len(summary.skipped) - 20} more", err=True)
    if preview is not None:
        from maskface.synth.preview import write_contact_sheet

        rows = summary.rows
        k = min(24, len(rows))
        pick = [rows[round(i * (len(rows) - 1) / max(k - 1, 1))] for i in range(k)]
        path = write_contact_sheet(preview, [(r.source, out_dir / r.output, r.style)
                                             for r in pick])
        typer.echo(f"preview: {path}")
    if check:
        from maskface.synth.check import check_synth

        _print_check(check_synth(out_dir, progress=_bar("check")))


@eval_app.command("synth")
@user_errors
def eval_synth(
    synth_dir: Annotated[Path, typer.Argument(help="Output folder of 'maskface synth'.")],
    limit: Annotated[int, typer.Option(min=1, help="Images to check, evenly spread.")] = 1000,
    detector: Annotated[str, typer.Option(help="yunet, retinaface or mtcnn.")] = "yunet",
    classifier: Annotated[str, typer.Option(
        help="Mask classifier: registered name or ONNX file.")] = "mask_classifier",
    input_size: Annotated[int | None, typer.Option(
        min=32, help="Detector input size (longest side, px); default: the detector's.")] = None,
    exclude_identities_of: Annotated[Path | None, typer.Option(
        help="A manifest.csv (e.g. of the classifier's training set): leave out its identities."
    )] = None,
) -> None:
    """Do the project's detector and mask classifier see the synthetic masks as masks?

    Writes SYNTH_DIR/synth_check.json and a contact sheet of the failures."""
    from maskface.synth.batch import read_manifest
    from maskface.synth.check import check_synth

    exclude = None
    if exclude_identities_of is not None:
        exclude = {r.identity for r in read_manifest(exclude_identities_of)}
    _print_check(check_synth(synth_dir, limit, detector, classifier, exclude, input_size,
                             progress=_bar("check")))

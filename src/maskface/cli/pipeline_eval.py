"""``maskface eval pipeline``: detection + mask classification against scene ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from maskface.cli.apps import eval_app
from maskface.cli.common import FileOption, fail, progress, user_errors
from maskface.jsonfile import write_json


def _scales(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        scales = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        fail(f"--scales takes comma-separated numbers such as 0.625,1, not '{text}'")
    if not scales or any(s <= 0 for s in scales):
        fail(f"--scales needs positive numbers, not '{text}'")
    return scales


def detector_options(input_size: int | None, scales: str | None, flip: bool | None,
                     tile: bool | None, score_threshold: float | None, no_zoom: bool = False
                     ) -> dict[str, Any]:
    """The detector keyword arguments given on the command line (the rest keep defaults)."""
    opts: dict[str, Any] = {"input_size": input_size, "scales": _scales(scales), "flip": flip,
                            "tile": tile, "score_threshold": score_threshold}
    opts = {k: v for k, v in opts.items() if v is not None}
    if no_zoom:
        opts["small_face_zoom"] = None
    return opts


def describe_detector(det) -> dict[str, Any]:
    keys = ("input_size", "scales", "flip", "tile", "score_threshold", "min_face_size",
            "max_upscale", "small_face_zoom", "small_face_px", "zoom_min_small_faces")
    out = {"name": det.name}
    out.update({k: getattr(det, k) for k in keys if hasattr(det, k)})
    return out


def _rate(value: float | None) -> str:
    """A rate for the summary; ``n/a`` where the data has no face of its class."""
    return "n/a" if value is None else f"{value:.3f}"


def format_summary(rep: dict[str, Any]) -> str:
    d = rep["detection"]
    lines = [f"{rep['images']} images, {rep['faces']} true faces: recall {d['recall']:.3f}, "
             f"precision {d['precision']:.3f}, {d['false_detections']} false detections"]
    sizes = ", ".join(f"{k} {v['recall']:.3f} ({v['found']}/{v['faces']})"
                      for k, v in d["recall_by_size"].items())
    lines.append(f"recall by size: {sizes}")
    loose = d.get("recall_iou_0.3")
    if loose is not None:
        sizes = ", ".join(f"{k} {v['recall']:.3f}"
                          for k, v in d["recall_by_size_iou_0.3"].items())
        lines.append(f"recall at IoU > 0.3: {loose:.3f} ({sizes})")
    labels = ", ".join(f"{k} {v['recall']:.3f}" for k, v in d["recall_by_label"].items())
    loose_labels = d["recall_by_label_iou_0.3"]
    if loose_labels:
        labels += " (IoU > 0.3: " + ", ".join(
            f"{k} {v['recall']:.3f}" for k, v in loose_labels.items()) + ")"
    lines.append(f"recall by class: {labels}")
    if rep.get("classification"):
        lines.append(f"TNR (unmasked caught) {_rate(rep['tnr'])}, FNR (masked flagged) "
                     f"{_rate(rep['fnr'])}" + (f", pipeline ROC AUC {rep['roc']['auc']:.4f}"
                                               if rep.get("roc") else ""))
        if rep.get("masked_view"):
            mv = rep["masked_view"]
            lines.append(f"masked view (mask_incorrect = masked): TNR {_rate(mv['tnr'])}, "
                         f"FNR {_rate(mv['fnr'])}")
        lines.append(f"{'true class':<14}{'correct':>9}{'wrong':>7}{'missed':>8}")
        for lab, t in rep["classification"]["table"].items():
            lines.append(f"{lab:<14}{t['correct']:>9}{t['wrong']:>7}{t['not_identified']:>8}")
        ff = rep["classification"]["found_faces"]
        lines.append("faces found, rows true, columns predicted: " + ", ".join(ff["labels"]))
        for lab, row in zip(ff["labels"], ff["confusion_matrix"]):
            lines.append(f"  {lab:<14}" + "".join(f"{v:>8d}" for v in row))
        lines.append(f"{'class (found)':<16}{'precision':>10}{'recall':>9}{'F1':>9}")
        for lab, m in ff["per_class"].items():
            lines.append(f"{lab:<16}{m['precision']:>10.4f}{m['recall']:>9.4f}{m['f1']:>9.4f}")
        sizes = ", ".join(f"{k} {v['accuracy']:.3f} ({v['right']}/{v['faces']})" for k, v in
                          rep["classification"]["accuracy_on_identified_by_size"].items())
        lines.append(f"labels right on faces found, by size: {sizes}")
        from maskface.eval.metrics import calibration_text

        if cal := calibration_text(rep["classification"].get("calibration")):
            lines.append(f"calibration on faces found: {cal}")
    ci = rep.get("intervals_95") or {}
    shown = [(k, name) for k, name in (
        ("recall", "recall"), ("recall_small (< 32 px)", "small"),
        ("f1_with_mask", "F1 with"), ("f1_without_mask", "without"),
        ("f1_mask_incorrect", "incorrect"), ("tnr", "TNR"), ("fnr", "FNR")) if k in ci]
    if shown:
        lines.append("95 % intervals, photos resampled: " + ", ".join(
            f"{name} {ci[k][0]:.3f}-{ci[k][1]:.3f}" for k, name in shown))
    lines.append(f"{rep['timing']['per_image_mean_ms']:.0f} ms per image on average")
    return "\n".join(lines)


@eval_app.command("pipeline")
@user_errors
def eval_pipeline(
    scenes: Annotated[Path, typer.Option(help="Scenes folder: images/ + annotations.csv "
                                         "(dataroots) or images/ + annotations/*.xml (VOC).")],
    report: Annotated[Path, FileOption("--report", "-r", help="JSON report to write; PNG "
                                         "plots go beside it.")] = Path("pipeline.json"),
    detector: Annotated[str | None, typer.Option(
        help="yunet, retinaface or mtcnn (default: the package default).")] = None,
    classifier: Annotated[str, typer.Option(
        help="Mask classifier ONNX file, 'default', or 'none' for detection only.")
    ] = "default",
    input_size: Annotated[int | None, typer.Option(
        min=32, help="Longest side the image is resized to before detection.")] = None,
    scales: Annotated[str | None, typer.Option(
        help="Extra test-time scales, multiples of --input-size, e.g. 0.625,1.")] = None,
    flip: Annotated[bool | None, typer.Option(
        "--flip/--no-flip", help="Also detect on the mirrored image.", show_default=False)
    ] = None,
    tile: Annotated[bool | None, typer.Option(
        "--tile/--no-tile", help="Also search native-resolution tiles of large images.",
        show_default=False)] = None,
    score_threshold: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="Detector score threshold.")] = None,
    no_zoom: Annotated[bool, typer.Option(
        "--no-zoom", help="No 3x small-face pass (the default runs it on photos with three or "
        "more faces under 40 px, the crowd profile on photos with one).")] = False,
    split: Annotated[str | None, typer.Option(
        help="Only the images of the dataset's splits/<SPLIT>.txt (e.g. test).")] = None,
    profile: Annotated[str | None, typer.Option(
        help="Detection profile: kiosk (YuNet 640, live video), photo (the default) or crowd "
        "(small faces in crowd photos; slower on photos with small faces). Explicit detector "
        "options override its own.")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="Only the first N images (0: all).")] = 0,
    examples: Annotated[int, typer.Option(min=0, help="Annotated example scenes in the "
                                          "examples PNG (0: none).")] = 6,
) -> None:
    """Detection recall/precision, TNR/FNR, per-class table, recall by face size and the
    pipeline ROC on a scenes dataset with true face boxes."""
    from maskface.detect import DEFAULT_DETECTOR, create_detector, profile_detector
    from maskface.eval import pipeline as ev
    from maskface.eval.compare import run_intervals
    from maskface.eval.scenes import detect_layout, load_scenes
    from maskface.pipeline import Pipeline

    layout = detect_layout(scenes)
    data = load_scenes(scenes, split)
    if limit:
        data = data[:limit]
    options = detector_options(input_size, scales, flip, tile, score_threshold, no_zoom)
    if profile is not None:
        if detector is not None:
            fail("give --profile or --detector, not both")
        det = profile_detector(profile, **options)
    else:
        det = create_detector(detector or DEFAULT_DETECTOR, **options)
    pipe = Pipeline(detector=det, classifier=None if classifier == "none" else classifier)
    evals = ev.evaluate(data, pipe, progress=lambda it: progress(it, desc="eval pipeline",
                                                                 unit="image", leave=False))
    rep: dict[str, Any] = {"scenes": str(scenes), "layout": layout, "split": split,
                           "profile": profile,
                           "iou_threshold": ev.IOU_THRESHOLD,
                           "detector": describe_detector(det),
                           "classifier": getattr(pipe.classifier, "name", None)}
    rep.update(ev.summarise(evals, classified=pipe.classifier is not None))
    rep["timing"] = ev.timing(evals)
    report.parent.mkdir(parents=True, exist_ok=True)
    plots: dict[str, str] = {}
    roc = ev.pipeline_roc(evals) if pipe.classifier is not None else None
    if roc is not None:
        from maskface.eval.plots import plot_roc

        plots["roc"] = str(plot_roc({"pipeline": roc},
                                    report.with_name(report.stem + "_roc.png"),
                                    title="pipeline ROC (missed faces = masked)"))
    if rep.get("classification"):
        import numpy as np

        from maskface.eval.plots import plot_confusion, plot_reliability

        ff = rep["classification"]["found_faces"]
        if ff["labels"]:
            plots["confusion"] = str(plot_confusion(
                np.array(ff["confusion_matrix"]), ff["labels"],
                report.with_name(report.stem + "_confusion.png"),
                title="faces found (IoU > 0.5): true x predicted"))
        if rep["classification"]["calibration"]["bins"]:
            plots["reliability"] = str(plot_reliability(
                rep["classification"]["calibration"],
                report.with_name(report.stem + "_reliability.png"),
                title="faces found"))
    if examples:
        plots["examples"] = str(ev.plot_examples(
            evals, report.with_name(report.stem + "_examples.png"), n=examples))
    errors = ev.plot_errors(evals, report.with_name(report.stem + "_errors.png"))
    if errors is not None:
        plots["errors"] = str(errors)
    rep["plots"] = plots
    records = ev.face_records(evals)
    rep["intervals_95"] = run_intervals({**rep, **records})
    rep.update(records)  # last: the report's head stays readable
    write_json(report, rep, indent=2)
    typer.echo(format_summary(rep))
    typer.echo(f"report: {report}")
    for p in plots.values():
        typer.echo(f"plot:   {p}")


def format_comparison(result: dict[str, Any], a: Path, b: Path) -> str:
    lines = [f"A = {a}", f"B = {b}",
             f"{result['faces']} faces in {result['images']} images, {result['resamples']} "
             "paired resamples of the images",
             f"{'figure':<28}{'A':>9}{'B':>9}{'B - A':>9}   95 % interval"]
    for name, r in result["metrics"].items():
        lo, hi = r["ci95"]
        lines.append(f"{name:<28}{r['A']:>9.4f}{r['B']:>9.4f}{r['difference']:>+9.4f}   "
                     f"[{lo:+.4f}, {hi:+.4f}]" + ("  *" if r["significant"] else ""))
    if result.get("unclassified"):
        lines.append(f"{' and '.join(result['unclassified'])} ran without a classifier: the "
                     "mask figures are left out (undefined there, not 0)")
    if any(r["significant"] for r in result["metrics"].values()):
        lines.append("* the interval excludes 0: a difference beyond what resampling the "
                     "photos gives")
    else:
        lines.append("no figure differs beyond what resampling the photos gives (every "
                     "interval includes 0)")
    return "\n".join(lines)


@eval_app.command("compare")
@user_errors
def eval_compare(
    a: Annotated[Path, typer.Argument(help="Report of run A (maskface eval pipeline, or eval "
                  "classifier).")],
    b: Annotated[Path, typer.Argument(help="Report of run B, on the same faces.")],
    report: Annotated[Path, FileOption("--report", "-r", help="JSON report to write; a PNG "
                                         "of the intervals goes beside it.")
                      ] = Path("compare.json"),
    resamples: Annotated[int, typer.Option(min=100, help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
) -> None:
    """Is B better than A beyond the noise of the photos? Paired bootstrap over the images of
    two pipeline (or two classifier) reports on the same faces: each figure, B - A and its 95 %
    interval."""
    from maskface.eval.compare import compare_reports
    from maskface.eval.plots import plot_intervals

    runs = []
    for path in (a, b):
        try:
            runs.append(json.loads(path.read_text()))
        except FileNotFoundError:
            fail(f"{path}: no such file")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            fail(f"{path}: not a JSON report ({exc})")
        if not isinstance(runs[-1], dict):
            fail(f"{path}: not a pipeline or classifier report")
    result = compare_reports(*runs, resamples=resamples, seed=seed)
    result["runs"]["A"]["report"], result["runs"]["B"]["report"] = str(a), str(b)
    report.parent.mkdir(parents=True, exist_ok=True)
    plot = plot_intervals(result["metrics"], report.with_name(report.stem + "_intervals.png"),
                          title=f"{b.stem} - {a.stem}, 95 % interval")
    result["plots"] = {"intervals": str(plot)}
    write_json(report, result, indent=2)
    typer.echo(format_comparison(result, a, b))
    typer.echo(f"report: {report}")
    typer.echo(f"plot:   {plot}")

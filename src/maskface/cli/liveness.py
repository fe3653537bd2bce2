"""``maskface eval liveness``: presentation-attack detection figures on a folder of frames."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskface.cli.apps import eval_app, train_app
from maskface.cli.common import FileOption, fail, output_folder, progress, user_errors
from maskface.jsonfile import write_json


@eval_app.command("liveness")
@user_errors
def eval_liveness(
    data: Annotated[Path, typer.Argument(
        help="Folder with real/<subject>/ and attack folders (print/<subject>/, ...).")],
    report: Annotated[Path | None, FileOption(
        "--report", "-r", help="JSON report to write; PNG plots go beside it (<stem>_roc.png, "
        "_scores.png, _errors.png) [default: maskface-out/eval-liveness/report.json]")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", hidden=True, help="Older form: the same as --report OUT/report.json.")
                   ] = None,
    detector: Annotated[str, typer.Option(help="yunet (the kiosk's), retinaface or mtcnn.")
                        ] = "yunet",
    threshold: Annotated[float | None, typer.Option(
        min=0.0, max=1.0,
        help="Operating threshold on the live score (default: the shipped one).")] = None,
    model: Annotated[str, typer.Option(
        help="Liveness ONNX (e.g. from 'maskface train liveness'); default: the shipped one.")
                     ] = "liveness_minifasnet",
    grey: Annotated[bool, typer.Option(
        "--grey", help="Make every frame grey first (an infrared or monochrome camera) and "
        "report the model's own scores, which the door does not trust on grey frames.")
                    ] = False,
) -> None:
    """APCER, BPCER, ACER at the operating threshold, BPCER at APCER 1 % / 5 %, ROC AUC.

    Writes the report, its ROC and score histogram and, when any frame is judged wrongly, an
    errors sheet (those frames' faces, worst first), like every other eval command."""
    from maskface.detect import create_detector
    from maskface.eval.liveness import (
        BONA_FIDE,
        list_frames,
        plot_errors,
        plot_histogram,
        score_frames,
        summarize,
    )
    from maskface.eval.metrics import roc_curve
    from maskface.eval.plots import plot_roc
    from maskface.liveness import DEFAULT_THRESHOLD, LivenessChecker

    if report is not None and out is not None:
        fail("give --report or the older --out, not both")
    if report is None:
        report = (out or Path("maskface-out/eval-liveness")) / "report.json"
    frames = list_frames(data)
    output_folder(report.parent)  # a bad path fails before the scoring, not after it
    beside = report.with_name  # the plots sit beside the report, named after it
    th = DEFAULT_THRESHOLD if threshold is None else threshold
    det = create_detector(detector)
    checker = LivenessChecker(det.name, th, model=model)
    rows = score_frames(frames, det, checker,
                        lambda it: progress(it, desc="liveness", unit="frame", leave=False),
                        grey=grey)
    rep = summarize(rows, th)
    rep.update(data=str(data), detector=det.name, model=model, grey=grey)
    import numpy as np

    scores = np.array([-1.0 if r["score"] is None else r["score"] for r in rows])
    bona = np.array([r["kind"] in BONA_FIDE for r in rows])
    roc_png = plot_roc({det.name: (roc_curve(scores, bona), rep["roc_auc"])},
                       beside(report.stem + "_roc.png"),
                       title="liveness ROC (positive = bona fide)")
    scores_png = plot_histogram(rows, th, beside(report.stem + "_scores.png"))
    errors = plot_errors(rows, th, beside(report.stem + "_errors.png"), grey=grey)
    write_json(report, {**rep, "rows": rows}, indent=1)
    a = rep["at_threshold"]
    typer.echo(f"{rep['frames']} frames{' made grey' if grey else ''}, "
               f"{len(rep['subjects'])} subjects, {rep['no_face']} "
               f"without a face; detector {det.name}, threshold {th:g}")
    per = ", ".join(f"{k} {v:.2%}" for k, v in a["apcer_per_attack"].items())
    typer.echo(f"APCER {a['apcer']:.2%} ({a['attacks_accepted']}/{a['attacks']}; {per})  "
               f"BPCER {a['bpcer']:.2%} ({a['bona_fide_rejected']}/{a['bona_fide']})  "
               f"ACER {a['acer']:.2%}")
    typer.echo(f"BPCER @ APCER 1% {rep['bpcer_at_apcer_1pct']['bpcer']:.2%}, @ APCER 5% "
               f"{rep['bpcer_at_apcer_5pct']['bpcer']:.2%}; ROC AUC {rep['roc_auc']:.5f}")
    typer.echo(f"report: {report}")
    for plot in (roc_png, scores_png, errors):
        if plot:
            typer.echo(f"plot:   {plot}")


@train_app.command("liveness")
@user_errors
def train_liveness(
    data: Annotated[Path, typer.Argument(
        help="Folder with real/<subject>/ and attack folders (print/<subject>/, ...).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (ONNX + card).")],
    weights: Annotated[Path, typer.Option(
        help="Folder with Minivision's 2.7_80x80_MiniFASNetV2.pth and "
             "4_0_0_80x80_MiniFASNetV1SE.pth.")] = Path("../shared/models/minifasnet"),
    epochs: Annotated[int, typer.Option(min=1)] = 3,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-5,
    batch: Annotated[int, typer.Option(min=2)] = 16,
    val_frac: Annotated[float, typer.Option(min=0.0, max=0.8, help="Share of subjects.")] = 0.2,
    test_frac: Annotated[float, typer.Option(min=0.0, max=0.8, help="Share of subjects.")
                         ] = 0.2,
    detector: Annotated[str, typer.Option(help="The detector whose boxes the site uses.")
                        ] = "yunet",
    seed: int = 0,
    threads: Annotated[int, typer.Option(min=1, help="PyTorch threads.")] = 2,
) -> None:
    """Fine-tune the liveness pair on a site's own frames, split by subject.

    Writes liveness.onnx and liveness.card.json (test subjects scored once, at the end)."""
    from maskface.errors import require_extra

    require_extra("train", "torch", "onnx", doing="training")
    from maskface.train.liveness import LivenessTrainConfig
    from maskface.train.liveness import train_liveness as run
    card = run(LivenessTrainConfig(str(data), str(out), str(weights), epochs, batch, lr,
                                   val_frac, test_frac, detector, seed, threads))
    t = card["test_at_threshold"]
    typer.echo(f"subjects: train {len(card['split']['train'])}, val {len(card['split']['val'])},"
               f" test {len(card['split']['test'])}; best val loss {card['best_val_loss']:.4f}")
    typer.echo(f"test subjects at {card['threshold']:g}: APCER {t['apcer']:.2%} "
               f"({t['attacks_accepted']}/{t['attacks']}), BPCER {t['bpcer']:.2%} "
               f"({t['bona_fide_rejected']}/{t['bona_fide']})")
    typer.echo(f"model: {out / 'liveness.onnx'} (evaluate it with 'maskface eval liveness "
               f"--model'), card: {out / 'liveness.card.json'}")

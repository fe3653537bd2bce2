"""``maskface train classifier`` and ``maskface eval classifier``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskface.cli.apps import eval_app, train_app
from maskface.cli.common import FileOption, fail, user_errors
from maskface.errors import require_extra


@train_app.command("classifier")
@user_errors
def train_classifier(
    data: Annotated[list[Path], typer.Option(
        "--data", help="Data root(s) holding one folder per class (aliases such as "
        "masked/not_masked accepted), or scenes datasets with fixed splits (images/ + "
        "annotations, splits/*.txt: each true box cut with the inference crop); repeat the "
        "option or list several.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for the ONNX model, "
                                      "card, curves and split lists.")],
    more_data: Annotated[list[Path] | None, typer.Argument(
        help="Further data roots (so '--data A B' works).", show_default=False)] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 8,
    freeze_epochs: Annotated[int, typer.Option(min=0, help="Head-only epochs first.")] = 1,
    size: Annotated[int, typer.Option(min=32, help="Input side in pixels.")] = 96,
    batch: Annotated[int, typer.Option(min=2)] = 32,
    lr: Annotated[float, typer.Option(help="Peak fine-tuning learning rate (AdamW).")] = 5e-4,
    label_smoothing: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.1,
    samples_per_epoch: Annotated[int, typer.Option(
        min=0, help="Balanced training draws per epoch (0 = all training images).")] = 0,
    seed: int = 0,
    group_pattern: Annotated[str | None, typer.Option(
        help="Regex on file names whose (first group) match keeps a group, e.g. an identity, "
        "in one split: '^(n\\d+)_' for VGGFace2 names.")] = None,
    classes: Annotated[str, typer.Option(
        help="Class names in output order, comma-separated.")] = "with_mask,without_mask",
    threads: Annotated[int, typer.Option(min=1, help="PyTorch threads.")] = 2,
    augment: Annotated[str, typer.Option(
        help="Augmentation preset: 'base' (detector jitter, colour, blur, low resolution, "
        "JPEG) or 'camera' (base plus 16-48 px faces, low light, colour casts, hands).")
    ] = "base",
    frozen_blocks: Annotated[int, typer.Option(
        min=0, max=19, help="Leading MobileNetV2 blocks kept frozen while fine-tuning.")] = 4,
    init: Annotated[str | None, typer.Option(
        help="Start from a shipped classifier (registered name or ONNX file) instead of "
        "ImageNet. With --frozen-blocks K its first K blocks stay as they are, and the run "
        "also writes shared.onnx: both networks in one graph, the K blocks computed once.")
    ] = None,
    int8_branch: Annotated[bool, typer.Option(
        "--int8-branch", help="With --init and --frozen-blocks and three classes: also write "
        "shared_int8.onnx, the shared graph with its three-class branch in int8 (the two-class "
        "output unchanged), its rule swept again on validation: how the default is made.")
    ] = False,
    tight_crops: Annotated[bool, typer.Option(
        "--tight-crops", help="Also train on every scenes face cut exactly at its true box "
        "(a source of its own, same split), as face-crop datasets cut them: without it a mask "
        "pulled down to the chin is learnt only with the context below the chin.")] = False,
) -> None:
    """Fine-tune MobileNetV2 (ImageNet init) on face crops and export ONNX + training card."""
    require_extra("train", "torch", "onnx", "matplotlib", doing="training")
    from maskface.eval.classifier import auc_text
    from maskface.train.augment import PRESETS
    from maskface.train.classifier import TrainConfig
    from maskface.train.classifier import train_classifier as run

    if augment not in PRESETS:
        fail(f"--augment must be one of {', '.join(PRESETS)}, not '{augment}'")
    names = tuple(c.strip() for c in classes.split(",") if c.strip())
    if len(names) < 2 or len(set(names)) != len(names):
        fail(f"--classes needs at least two distinct names, got '{classes}'")
    if int8_branch and not (init and frozen_blocks):
        fail("--int8-branch needs --init and --frozen-blocks (it quantises the shared graph's "
             "branch)")
    roots = [str(d) for d in [*data, *(more_data or [])]]
    cfg = TrainConfig(data=roots, out=str(out), classes=names, epochs=epochs,
                      freeze_epochs=min(freeze_epochs, epochs - 1), size=size, batch=batch,
                      lr=lr, label_smoothing=label_smoothing,
                      samples_per_epoch=samples_per_epoch, seed=seed, threads=threads,
                      group_pattern=group_pattern, augment=augment,
                      frozen_blocks=frozen_blocks, init=init, int8_branch=int8_branch,
                      tight_crops=tight_crops)
    card = run(cfg)
    typer.echo(f"best epoch {card['best_epoch']} of {epochs}; "
               f"{card['time']['epoch_s_mean']:.0f} s/epoch, {card['time']['total_s']:.0f} s "
               "in all")
    for split in ("val", "test"):
        for src, rep in card[split].items():
            if src != "all":
                typer.echo(f"{split:>4} {src:<24} n={rep['n']:<5} accuracy "
                           f"{rep['accuracy']:.2%}  ROC AUC {auc_text(rep['roc_auc'])}")
    typer.echo(f"model: {out / card['onnx']['file']}  (sha256 {card['onnx']['sha256'][:16]}…, "
               f"ONNX vs torch max diff {card['onnx']['max_abs_diff_vs_torch']:.1e})")
    if "shared" in card:
        typer.echo(f"shared graph: {out / card['shared']['file']}  ({card['shared']['blocks']} "
                   f"blocks shared with {init})")
        rule = card["shared"].get("three_way_rule")
        if rule:
            v = rule["validation"]
            missed = ("" if rule["criterion_met"] else "; no rule met the criterion "
                      "(mask_incorrect recall >= 0.75 at precision >= 0.70): the best macro F1")
            typer.echo(f"three-way rule (chosen on validation, stored in the graph): threshold "
                       f"{rule['threshold']}, override {rule['override']}; val macro F1 "
                       f"{v['ilc_val_macro_f1']:.4f}, mask_incorrect P/R "
                       f"{v['ilc_val_incorrect_precision']:.3f}/"
                       f"{v['ilc_val_incorrect_recall']:.3f}{missed}; sweep: "
                       f"{out / rule['sweep']}")
        q = card["shared"].get("int8")
        if q:
            r = q.get("three_way_rule") or {}
            said = (f"rule {r['threshold']} / {r['override']}"
                    + ("" if r.get("criterion_met") else ", criterion missed")
                    if r else "no rule")
            typer.echo(f"int8 branch: {out / q['file']}  ({q['bytes'] / 1e6:.1f} MB, "
                       f"{q['calibration']['crops']} calibration crops; {said} on validation)")
    typer.echo(f"card:  {out / 'card.json'}")


@eval_app.command("classifier")
@user_errors
def eval_classifier(
    folder: Annotated[Path | None, typer.Argument(
        help="Folder with one sub-folder per class (with_mask, without_mask[, "
        "mask_incorrect]; masked/not_masked accepted).")] = None,
    report: Annotated[Path, FileOption("--report", "-r", help="JSON report to write; "
                                         "PNG plots go beside it.")] = Path("classifier.json"),
    model: Annotated[str, typer.Option(help="Classifier ONNX file or registered name "
                                       "('default': the shipped three-way stage).")
                     ] = "default",
    file_list: Annotated[Path | None, typer.Option(
        "--list", help="Evaluate a file list instead (label<TAB>[source<TAB>]path lines, "
        "e.g. a run's splits/test.txt).")] = None,
    scenes: Annotated[Path | None, typer.Option(
        help="Evaluate crops cut from the true boxes of a scenes dataset (dataroots or "
        "PASCAL VOC layout) with the inference crop.")] = None,
    split: Annotated[str | None, typer.Option(
        help="With --scenes: only the images of the dataset's splits/<SPLIT>.txt "
        "(e.g. test).")] = None,
    grey: Annotated[bool, typer.Option(
        "--grey", help="Make every crop grey first, as an infrared or monochrome camera "
        "delivers it.")] = False,
    crop: Annotated[str, typer.Option(
        help="With --scenes: 'inference' cuts each true box as the pipeline does (1.15x, with "
        "the context around the face); 'tight' cuts it exactly at the box, as face-crop "
        "datasets are made.")] = "inference",
    min_face: Annotated[float, typer.Option(
        min=0.0, help="With --scenes: leave out boxes whose shorter side is under this many "
        "pixels.")] = 0.0,
) -> None:
    """Accuracy, per-class precision/recall/F1, ROC AUC and confusion matrix of the classifier."""
    from maskface.classify import MaskClassifier
    from maskface.eval import classifier as ev

    given = [x for x in (folder, file_list, scenes) if x is not None]
    if len(given) != 1:
        fail("give exactly one of FOLDER, --list FILE or --scenes DIR")
    if split and scenes is None:
        fail("--split goes with --scenes")
    if crop not in ("inference", "tight"):
        fail(f"--crop must be 'inference' or 'tight', not '{crop}'")
    if scenes is None and (crop != "inference" or min_face):
        fail("--crop and --min-face go with --scenes")
    clf = MaskClassifier(model)
    if folder is not None:
        data = ev.folder_crops(folder, clf.input_size)
        kind = {"folder": str(folder)}
    elif file_list is not None:
        data = ev.list_crops(file_list, clf.input_size)
        kind = {"file_list": str(file_list)}
    else:
        data = ev.scene_crops(scenes, clf, split=split, tight=crop == "tight",
                              min_face=min_face)
        kind = {"scenes": str(scenes), "split": split, "min_face": min_face,
                "crop": ("tight: the true box exactly, framed by whole_image_crop"
                         if crop == "tight" else f"face_crop(scale={clf.crop_scale})")}
    if grey:
        from dataclasses import replace

        from maskface.io.image import grey_copy

        data = replace(data, crops=grey_copy(data.crops))
    rep = ev.run_classifier_eval(data, clf, report, {"model": clf.name, **kind, "grey": grey,
                                                     "title": f"ROC: {given[0].name}"})
    typer.echo(ev.format_report(rep))
    typer.echo(f"report: {report}")
    for p in rep["plots"].values():
        typer.echo(f"plot:   {p}")
    if data.failed:
        for f in data.failed:
            typer.echo(f"error: {f}", err=True)
        raise typer.Exit(1)

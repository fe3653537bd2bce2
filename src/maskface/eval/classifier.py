"""Mask-classifier evaluation on labelled crops: folders, file lists or scene ground truth.

Three ways to get labelled faces, all fed to the classifier exactly as inference feeds it:

* **folders** (``DIR/<class>/...``, aliases such as ``masked``/``not_masked`` accepted): the
  images are face crops already, so each is centred on a square (``whole_image_crop``);
* **file list** (``label<TAB>[source<TAB>]path`` lines, e.g. a training run's
  ``splits/test.txt``): the same, for a held-out split;
* **scenes** (dataroots or PASCAL VOC layout, read by :mod:`maskface.eval.scenes`): each true
  box is cut with :func:`maskface.classify.face_crop`, the crop the pipeline uses.

A three-class model on two-class data is reported twice: ``argmax`` over its three classes
(a ``mask_incorrect`` answer counts as wrong) and ``two_class``, with the probabilities
renormalised over the classes present in the data; ``masked_view`` (``mask_incorrect`` counted
as masked) and ``kiosk_view`` (counted as refused) fold the third class back in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskface.classify import MaskClassifier
from maskface.classify.crop import whole_image_crop
from maskface.draw import SHORT_LABELS
from maskface.errors import InputError, MaskfaceError
from maskface.eval.metrics import (
    bootstrap_ci,
    calibration,
    calibration_text,
    classification_report,
    interval_text,
    roc_auc,
    roc_curve,
)
from maskface.io.image import load_image
from maskface.jsonfile import write_json
from maskface.progress import progress as bar
from maskface.results import MASK_LABELS

log = logging.getLogger(__name__)


@dataclass
class LabelledCrops:
    """Classifier-ready crops with their true labels and where each came from."""

    crops: np.ndarray  # (N, S, S, 3) BGR uint8
    labels: list[str]
    sources: list[str]
    names: list[str]
    failed: list[str]


def crops_from_files(items: Sequence[tuple[str, str, str]], size: int, progress: bool = True
                     ) -> LabelledCrops:
    """Load ``(path, label, source)`` face-crop images; unreadable files are listed, skipped."""
    crops, labels, sources, names, failed = [], [], [], [], []
    for path, label, source in bar(items, desc="load", unit="img", leave=False,
                                   show=progress):
        try:
            img = load_image(path)
        except MaskfaceError as exc:
            failed.append(str(exc))
            continue
        crops.append(whole_image_crop(img, size))
        labels.append(label)
        sources.append(source)
        names.append(str(path))
    arr = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    return LabelledCrops(arr, labels, sources, names, failed)


def folder_crops(root: str | Path, size: int, classes: Sequence[str] = MASK_LABELS,
                 progress: bool = True) -> LabelledCrops:
    """Crops from a folder-per-class tree (see :func:`maskface.train.data.read_class_folders`)."""
    from maskface.train.data import read_class_folders

    samples = read_class_folders(root, classes)
    if not samples:
        raise InputError(f"{root}: no images in folders named {', '.join(classes)} "
                         "(or masked/not_masked/...)")
    return crops_from_files([(s.path, s.label, s.source) for s in samples], size, progress)


def list_crops(path: str | Path, size: int, classes: Sequence[str] = MASK_LABELS,
               progress: bool = True) -> LabelledCrops:
    """Crops from a file list (a training run's ``splits/test.txt``)."""
    from maskface.train.data import read_split_list

    samples = read_split_list(path, classes)
    if not samples:
        raise InputError(f"{path}: empty file list")
    return crops_from_files([(s.path, s.label, s.source) for s in samples], size, progress)


def scene_crops(root: str | Path, classifier: MaskClassifier, progress: bool = True,
                split: str | None = None, tight: bool = False, min_face: float = 0.0
                ) -> LabelledCrops:
    """Crops cut from a scenes dataset's ground-truth boxes with the inference crop; with
    ``split``, only the images of the dataset's ``splits/<split>.txt``.

    ``tight`` cuts each box exactly instead and frames it as a crop file
    (``whole_image_crop``): how face-crop datasets are made, without the context around the
    face that the pipeline's crop keeps. ``min_face`` leaves out boxes whose shorter side is
    smaller (pixels)."""
    from maskface.eval.scenes import load_scenes
    from maskface.geometry import crop_padded, short_sides

    scenes = load_scenes(root, split)
    size = classifier.input_size
    crops, labels, names, failed = [], [], [], []
    for scene in bar(scenes, desc="scenes", unit="img", leave=False, show=progress):
        keep = np.flatnonzero(short_sides(scene.boxes) >= min_face).tolist()
        if not keep:
            continue
        try:
            img = load_image(scene.path)
        except MaskfaceError as exc:
            failed.append(str(exc))
            continue
        boxes = scene.boxes[keep]
        if tight:
            crops.append(np.stack([whole_image_crop(crop_padded(img, b), size) for b in boxes]))
        else:
            crops.append(classifier.crops(img, boxes))
        labels += [scene.labels[k] for k in keep]
        names += [f"{scene.path}#{k}" for k in keep]
    if not labels and min_face > 0 and any(len(sc) for sc in scenes):
        raise InputError(f"{root}: no true box is {min_face:g} px or more on its shorter side "
                         "(--min-face)")
    arr = np.concatenate(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    return LabelledCrops(arr, labels, [Path(root).name] * len(labels), names, failed)


def _report(probs: np.ndarray, truth: Sequence[str], labels: Sequence[str]) -> dict:
    """The classification report, with a 95 % bootstrap interval of its accuracy (the crops
    of each true class resampled apart: a test set fixes how many of each it holds)."""
    idx = {lab: k for k, lab in enumerate(labels)}
    y = np.array([idx[t] for t in truth], dtype=np.int64)
    report = classification_report(probs, y, labels)
    right = probs.argmax(1) == y
    strata = [np.flatnonzero(y == k) for k in np.unique(y)]
    if strata:
        lo, hi = bootstrap_ci(lambda parts: float(right[np.concatenate(parts)].mean()), strata)
        report["accuracy_ci95"] = [round(lo, 5), round(hi, 5)]
    return report


def evaluate_crops(classifier: MaskClassifier, data: LabelledCrops, max_errors: int = 100
                   ) -> tuple[dict, np.ndarray]:
    """Predict and score; returns the report and the probabilities."""
    model_labels = list(classifier.labels)
    unknown = sorted(set(data.labels) - set(model_labels))
    if unknown:
        raise InputError(f"the data has class(es) {', '.join(unknown)} that the model "
                         f"({', '.join(model_labels)}) cannot predict")
    if not data.labels:
        raise InputError("no images could be read")
    probs = classifier.predict_proba(data.crops)
    report = _report(probs, data.labels, model_labels)
    truth = np.array([model_labels.index(t) for t in data.labels])
    report["calibration"] = calibration(probs.max(1), probs.argmax(1) == truth)
    present = [lab for lab in model_labels if lab in set(data.labels)]
    if len(present) < len(model_labels) and len(present) >= 2:
        cols = [model_labels.index(lab) for lab in present]
        sub = probs[:, cols] / np.maximum(probs[:, cols].sum(1, keepdims=True), 1e-12)
        report["two_class"] = _report(sub, data.labels, present)
        report["two_class"]["note"] = ("probabilities renormalised over the classes present "
                                       f"({', '.join(present)})")
    if (present == ["with_mask", "without_mask"] and "mask_incorrect" in model_labels):
        # Two-class data, three-class model: the two ways to fold mask_incorrect back in.
        w, wo, inc = (model_labels.index(k) for k in ("with_mask", "without_mask",
                                                       "mask_incorrect"))
        passes = (probs.argmax(1) == w).astype(np.float64)
        for key, merged, note in (
                ("masked_view", np.stack([probs[:, w] + probs[:, inc], probs[:, wo]], 1),
                 "mask_incorrect counted as masked (for the three-way default without its "
                 "override: the two-class model's own decision)"),
                ("kiosk_view", np.stack([passes, 1 - passes], 1),
                 "the model's answer, mask_incorrect counted as refused like without_mask "
                 "(what the door does); ROC AUC of P(with_mask)")):
            report[key] = _report(merged, data.labels, present)
            report[key]["note"] = note
        report["kiosk_view"]["roc_auc"] = roc_auc(probs[:, w],
                                                  np.array(data.labels) == "with_mask")
    sources = sorted(set(data.sources))
    if len(sources) > 1:
        src = np.array(data.sources)
        report["by_source"] = {s: _report(probs[src == s], np.array(data.labels)[src == s],
                                          model_labels) for s in sources}
    pred = probs.argmax(1)
    errors = [{"image": data.names[i], "true": data.labels[i],
               "predicted": model_labels[int(pred[i])],
               "probabilities": {lab: round(float(p), 4) for lab, p in zip(model_labels, probs[i])}}
              for i in range(len(pred)) if model_labels[int(pred[i])] != data.labels[i]]
    report["errors"] = errors[:max_errors]
    report["n_errors"] = len(errors)
    # what `maskface eval compare` resamples: a scenes crop's image is its photo
    report["per_crop"] = [{"name": name, "image": _image_of(name), "true": true,
                           "predicted": model_labels[int(k)],
                           "probability": round(float(probs[i, k]), 4)}
                          for i, (name, true, k) in enumerate(zip(data.names, data.labels,
                                                                   pred))]
    report["unreadable"] = data.failed
    return report, probs


def run_classifier_eval(data: LabelledCrops, classifier: MaskClassifier, report_path: Path,
                        description: dict) -> dict:
    """Evaluate, write ``report_path`` plus ``<stem>_roc.png``, ``<stem>_confusion.png`` and,
    when any crop is misclassified, ``<stem>_errors.png``."""
    from maskface.eval.plots import (
        plot_confusion,
        plot_reliability,
        plot_roc,
        plot_sheet,
        short_name,
    )

    report, probs = evaluate_crops(classifier, data)
    report_path = Path(report_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    labels = list(classifier.labels)
    truth = np.array(data.labels)
    curves = {}
    if len(labels) == 2 or "two_class" in report:
        # Binary view: how well P(with_mask) separates masked from unmasked faces.
        pos = labels.index("with_mask") if "with_mask" in labels else 0
        binary = np.isin(truth, [labels[pos]])
        if binary.any() and (~binary).any():
            for src in sorted(set(data.sources)) if len(set(data.sources)) > 1 else []:
                m = np.array(data.sources) == src
                if binary[m].any() and (~binary[m]).any():
                    curves[src] = _curve(probs[m, pos], binary[m])
            curves["all" if curves else labels[pos]] = _curve(probs[:, pos], binary)
        report["roc_curve"] = curves[next(reversed(curves))][0].to_dict() if curves else None
    else:
        for k, lab in enumerate(labels):
            pos = truth == lab
            if pos.any() and (~pos).any():
                curves[f"{lab} vs rest"] = _curve(probs[:, k], pos)
        report["roc_curves"] = {k: v[0].to_dict() for k, v in curves.items()}
    stem = report_path.with_suffix("")
    plots = {}
    if curves:
        plots["roc"] = plot_roc(curves, f"{stem}_roc.png", title=description.get("title",
                                                                                "ROC"))
    rows = [lab for lab in labels if lab in set(data.labels)]
    cm = np.array(report["confusion_matrix"])[[labels.index(r) for r in rows]]
    plots["confusion"] = plot_confusion(cm, rows, f"{stem}_confusion.png", pred_labels=labels)
    name = str(description.get("title", "")).removeprefix("ROC: ")
    plots["reliability"] = plot_reliability(report["calibration"], f"{stem}_reliability.png",
                                            title=f"reliability: {name}" if name else
                                            "reliability")
    wrong = _errors_by_confidence(probs, data.labels, labels)
    if len(wrong):
        captions = [(f"true {SHORT_LABELS.get(data.labels[i], data.labels[i])}",
                     f"said {SHORT_LABELS.get(labels[int(probs[i].argmax())])} "
                     f"{probs[i].max():.2f}", short_name(data.names[i])) for i in wrong]
        plots["errors"] = plot_sheet(data.crops[wrong], captions, f"{stem}_errors.png")
    per_crop = report.pop("per_crop")
    report = {**description, "model_labels": labels, "input_size": classifier.input_size,
              **report, "plots": {k: str(v) for k, v in plots.items()},
              "per_crop": per_crop}  # last: the report's head stays readable
    write_json(report_path, report, indent=2)
    return report


def _image_of(name: str) -> str:
    """The photo a crop came from: ``<path>#<k>`` for a scenes box, the file itself else."""
    head, _, k = name.rpartition("#")
    return head if head and k.isdigit() else name


def _errors_by_confidence(probs: np.ndarray, truth: Sequence[str], labels: Sequence[str]
                          ) -> np.ndarray:
    """Indices of the misclassified crops, the most confident mistakes first."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero([labels[int(p)] != t for p, t in zip(pred, truth)])
    return wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")]


def _curve(scores: np.ndarray, positive: np.ndarray):
    return roc_curve(scores, positive), roc_auc(scores, positive)


def auc_text(value: float | None) -> str:
    """A ROC AUC for a summary line; ``n/a`` where one class is missing (no curve)."""
    return "n/a" if value is None or value != value else f"{value:.4f}"


def _ci(report: dict) -> str:
    return interval_text(report.get("accuracy_ci95"))


def format_report(report: dict) -> str:
    """A readable summary table of a report."""
    lines = [f"{report.get('n', 0)} faces, accuracy {report['accuracy']:.2%}{_ci(report)}, "
             f"ROC AUC {auc_text(report['roc_auc'])}"]
    lines.append(f"{'class':<16}{'precision':>10}{'recall':>9}{'F1':>9}{'support':>9}")
    for lab, m in report["per_class"].items():
        if m["support"] or m["precision"]:
            lines.append(f"{lab:<16}{m['precision']:>10.4f}{m['recall']:>9.4f}{m['f1']:>9.4f}"
                         f"{m['support']:>9d}")
    if cal := calibration_text(report.get("calibration")):
        lines.append(f"calibration: {cal}")
    labels = report["labels"]
    lines.append("confusion (rows true, columns predicted: " + ", ".join(labels) + ")")
    for lab, row in zip(labels, report["confusion_matrix"]):
        if sum(row):
            lines.append(f"  {lab:<16}" + "".join(f"{v:>8d}" for v in row))
    if "two_class" in report:
        tc = report["two_class"]
        lines.append(f"two-class view ({', '.join(tc['labels'])}): accuracy "
                     f"{tc['accuracy']:.2%}{_ci(tc)}, ROC AUC {auc_text(tc['roc_auc'])}")
    for key, name in (("masked_view", "masked view (incorrect = masked)"),
                      ("kiosk_view", "kiosk view (incorrect = refused)")):
        if key in report:
            lines.append(f"{name}: accuracy {report[key]['accuracy']:.2%}{_ci(report[key])}, "
                         f"ROC AUC {auc_text(report[key]['roc_auc'])}")
    for src, r in report.get("by_source", {}).items():
        lines.append(f"  {src}: {r['n']} faces, accuracy {r['accuracy']:.2%}, "
                     f"ROC AUC {auc_text(r['roc_auc'])}")
    if report.get("unreadable"):
        lines.append(f"{len(report['unreadable'])} unreadable file(s) skipped")
    return "\n".join(lines)

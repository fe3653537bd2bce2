"""Pipeline evaluation on scenes with ground-truth faces (protocol in ``docs/evaluation.md``).

Each predicted face is matched one-to-one to a true face at IoU > 0.5 (greedy, highest IoU
first); recall at IoU > 0.3 is reported beside it for hand-drawn loose boxes. Then, per true
class, every true face is *identified and classified correctly*, *identified but classified
wrongly* or *not identified*; unmatched predictions are false
detections. A face is *flagged* when the classifier does not say ``with_mask`` (the kiosk would
refuse it):

* TNR = unmasked faces caught = flagged faces among true ``without_mask`` faces;
* FNR = masked faces flagged as unmasked = flagged faces among true ``with_mask`` faces.

Missed faces are never flagged, so they count as "masked" (they lower TNR, not FNR); the ROC of
the pipeline scores every true face by ``1 - P(with_mask)``, with 0 for a missed face.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maskface.draw import SHORT_LABELS, drawable, write_image
from maskface.eval.metrics import calibration
from maskface.eval.scenes import SCENE_LABELS, SceneImage
from maskface.geometry import iou_matrix

IOU_THRESHOLD = 0.5
#: a looser match reported beside it: hand-drawn boxes (e.g. ilc2021's, which take in hair and
#: reach over chin-worn masks) often overlap a detector's tighter box by less than 0.5
LOOSE_IOU_THRESHOLD = 0.3
#: face-size bins by true box height in pixels: (name, lower bound inclusive, upper exclusive)
SIZE_BINS = (("small", 0.0, 32.0), ("medium", 32.0, 96.0), ("large", 96.0, float("inf")))
NOT_DETECTED = "not_identified"


def match_boxes(pred: np.ndarray, truth: np.ndarray, iou_threshold: float = IOU_THRESHOLD
                ) -> np.ndarray:
    """One-to-one matching: for each true box the index of its predicted box, or -1.

    Pairs are taken greedily by decreasing IoU, and only pairs with IoU > ``iou_threshold``.
    """
    iou = iou_matrix(pred, truth)
    match = np.full(iou.shape[1], -1, dtype=np.int64)
    if iou.size == 0:
        return match
    pi, ti = np.nonzero(iou > iou_threshold)
    used = np.zeros(iou.shape[0], dtype=bool)
    for k in np.argsort(-iou[pi, ti], kind="stable"):
        p, t = pi[k], ti[k]
        if not used[p] and match[t] < 0:
            match[t] = p
            used[p] = True
    return match


@dataclass
class ImageEval:
    """Predictions for one scene and their matching to its true faces."""

    scene: SceneImage
    boxes: np.ndarray  # (P, 4) predicted boxes
    scores: np.ndarray  # (P,) detector scores
    labels: list[str | None]  # predicted mask label per box (None without a classifier)
    p_masked: np.ndarray  # (P,) P(with_mask) per box (nan without a classifier)
    match: np.ndarray = field(init=False)  # (T,) index into boxes, or -1
    time_ms: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)  # the pipeline's timings_ms
    #: (P,) the probability the classifier gave its answer (nan without a classifier)
    p_label: np.ndarray | None = None
    #: (T,) matching at LOOSE_IOU_THRESHOLD, for the recall reported beside the main one
    loose_match: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.match = match_boxes(self.boxes, self.scene.boxes)
        self.loose_match = match_boxes(self.boxes, self.scene.boxes, LOOSE_IOU_THRESHOLD)

    @property
    def false_detections(self) -> np.ndarray:
        """Indices of predictions matched to no true face."""
        matched = set(self.match[self.match >= 0].tolist())
        return np.array([i for i in range(len(self.boxes)) if i not in matched], np.int64)


def size_bin(height: float) -> str:
    for name, lo, hi in SIZE_BINS:
        if lo <= height < hi:
            return name
    return SIZE_BINS[-1][0]


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def summarise(evals: Sequence[ImageEval], classified: bool) -> dict[str, Any]:
    """The report's figures (see ``docs/evaluation.md``, section "pipeline")."""
    n_true = sum(len(e.scene) for e in evals)
    n_pred = sum(len(e.boxes) for e in evals)
    found = sum(int((e.match >= 0).sum()) for e in evals)
    fd = n_pred - found
    by_size = {name: [0, 0] for name, _, _ in SIZE_BINS}
    loose_by_size = {name: [0, 0] for name, _, _ in SIZE_BINS}
    by_label = {lab: [0, 0] for lab in SCENE_LABELS}
    loose_by_label = {lab: [0, 0] for lab in SCENE_LABELS}
    right_by_size = {name: [0, 0] for name, _, _ in SIZE_BINS}  # labels right, faces found
    # true x predicted label of the faces found (IoU > 0.5); the last column: not found
    confusion = np.zeros((len(SCENE_LABELS), len(SCENE_LABELS)), np.int64)
    table = {lab: {"correct": 0, "wrong": 0, NOT_DETECTED: 0} for lab in SCENE_LABELS}
    flagged = dict.fromkeys(SCENE_LABELS, 0)
    unmasked = dict.fromkeys(SCENE_LABELS, 0)  # called without_mask (masked view)
    fd_labels: dict[str, int] = {}
    answer_p, answer_right = [], []  # calibration of the answers on the faces found
    for e in evals:
        heights = e.scene.boxes[:, 3] - e.scene.boxes[:, 1]
        for t, (lab, h) in enumerate(zip(e.scene.labels, heights)):
            p = int(e.match[t])
            by_size[size_bin(h)][0] += p >= 0
            by_size[size_bin(h)][1] += 1
            loose_by_size[size_bin(h)][0] += int(e.loose_match[t] >= 0)
            loose_by_size[size_bin(h)][1] += 1
            by_label[lab][0] += p >= 0
            by_label[lab][1] += 1
            loose_by_label[lab][0] += int(e.loose_match[t] >= 0)
            loose_by_label[lab][1] += 1
            if not classified:
                continue
            if p < 0:
                table[lab][NOT_DETECTED] += 1
            else:
                table[lab]["correct" if e.labels[p] == lab else "wrong"] += 1
                right_by_size[size_bin(h)][0] += e.labels[p] == lab
                right_by_size[size_bin(h)][1] += 1
                if e.p_label is not None and not np.isnan(e.p_label[p]):
                    answer_p.append(float(e.p_label[p]))
                    answer_right.append(e.labels[p] == lab)
                flagged[lab] += e.labels[p] != "with_mask"
                unmasked[lab] += e.labels[p] == "without_mask"
                if e.labels[p] in SCENE_LABELS:
                    confusion[SCENE_LABELS.index(lab), SCENE_LABELS.index(e.labels[p])] += 1
        if classified:
            for i in e.false_detections:
                key = str(e.labels[i])
                fd_labels[key] = fd_labels.get(key, 0) + 1

    def bins(counts: dict[str, list[int]]) -> dict[str, dict[str, Any]]:
        return {k: {"faces": n, "found": f, "recall": _rate(f, n)}
                for k, (f, n) in counts.items() if n}

    report: dict[str, Any] = {
        "images": len(evals),
        "faces": n_true,
        "faces_by_label": {k: n for k, (_, n) in by_label.items() if n},
        "detection": {
            "recall": _rate(found, n_true),
            "precision": _rate(found, n_pred),
            "found": found,
            "missed": n_true - found,
            "predicted": n_pred,
            "false_detections": fd,
            "recall_by_size": bins(by_size),
            "size_bins_px": {name: [lo, None if np.isinf(hi) else hi]
                             for name, lo, hi in SIZE_BINS},
            "recall_by_label": bins(by_label),
            f"recall_iou_{LOOSE_IOU_THRESHOLD}": _rate(
                sum(int((e.loose_match >= 0).sum()) for e in evals), n_true),
            f"recall_by_size_iou_{LOOSE_IOU_THRESHOLD}": bins(loose_by_size),
            # a face missed at IoU 0.3 was not found at all; between 0.3 and 0.5, a box
            # drawn differently: masked faces are the ones the detectors miss outright
            f"recall_by_label_iou_{LOOSE_IOU_THRESHOLD}": bins(loose_by_label),
        },
        "false_detections": fd,
    }
    if not classified:
        report.update(tnr=None, fnr=None, classification=None, roc=None)
        return report
    report["tnr"] = _rate(flagged["without_mask"], by_label["without_mask"][1])
    report["fnr"] = _rate(flagged["with_mask"], by_label["with_mask"][1])
    if not by_label["mask_incorrect"][1] and any(
            lab == "mask_incorrect" for e in evals for lab in e.labels):
        # Two-class truth (the older sets label a mask under the nose with_mask): the same
        # figures with a mask_incorrect answer counted as masked, beside the kiosk's.
        report["masked_view"] = {
            "tnr": _rate(unmasked["without_mask"], by_label["without_mask"][1]),
            "fnr": _rate(unmasked["with_mask"], by_label["with_mask"][1]),
            "note": "mask_incorrect answers counted as masked (tnr/fnr above count them as "
                    "flagged, as the kiosk refuses them)"}
    identified = {lab: t["correct"] + t["wrong"] for lab, t in table.items()}
    report["classification"] = {
        "table": {lab: {**t, "faces": sum(t.values())} for lab, t in table.items()
                  if sum(t.values())},
        "accuracy_on_identified": _rate(sum(t["correct"] for t in table.values()),
                                        sum(identified.values())),
        "accuracy_end_to_end": _rate(sum(t["correct"] for t in table.values()), n_true),
        "accuracy_on_identified_by_size": {
            k: {"faces": n, "right": r, "accuracy": _rate(r, n)}
            for k, (r, n) in right_by_size.items() if n},
        "false_detections_by_predicted_label": fd_labels,
        **found_faces_report(confusion),
        "calibration": calibration(answer_p, answer_right),
    }
    roc = pipeline_roc(evals)
    report["roc"] = None if roc is None else {
        "positive": "without_mask", "score": "1 - P(with_mask); 0 for a missed face",
        "faces": len(roc_samples(evals)[0]), "auc": round(roc[1], 4), "curve": roc[0].to_dict()}
    return report


def face_records(evals: Sequence[ImageEval]) -> dict[str, Any]:
    """Every true face's outcome, and each image's unmatched detections: what ``maskface eval
    compare`` resamples by image to put a confidence interval on the difference between two
    runs on the same faces (:mod:`maskface.eval.compare`)."""
    faces = []
    for e in evals:
        heights = e.scene.boxes[:, 3] - e.scene.boxes[:, 1]
        for t, (lab, h) in enumerate(zip(e.scene.labels, heights)):
            p = int(e.match[t])
            faces.append({
                "image": e.scene.name, "face": t, "label": lab, "height": round(float(h), 1),
                "found": p >= 0, f"found_iou_{LOOSE_IOU_THRESHOLD}": bool(e.loose_match[t] >= 0),
                "predicted": e.labels[p] if p >= 0 else None,
                "p_with_mask": (None if p < 0 or np.isnan(e.p_masked[p])
                                else round(float(e.p_masked[p]), 4))})
    return {"per_face": faces,
            "false_detections_per_image": {e.scene.name: len(e.false_detections) for e in evals}}


def found_faces_report(confusion: np.ndarray) -> dict[str, Any]:
    """Per-class precision/recall/F1 and the confusion matrix of the faces found, over the
    classes present in the truth or the predictions."""
    present = [k for k in range(len(SCENE_LABELS))
               if confusion[k].sum() or confusion[:, k].sum()]
    labels = [SCENE_LABELS[k] for k in present]
    cm = confusion[np.ix_(present, present)]
    per_class = {}
    for i, lab in enumerate(labels):
        tp, pred, true = int(cm[i, i]), int(cm[:, i].sum()), int(cm[i].sum())
        p, r = (tp / pred if pred else 0.0), (tp / true if true else 0.0)
        per_class[lab] = {"precision": round(p, 4), "recall": round(r, 4),
                          "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
                          "support": true}
    return {"found_faces": {"labels": labels, "confusion_matrix": cm.tolist(),
                            "per_class": per_class,
                            "note": "faces found at IoU > 0.5; rows true, columns predicted"}}


def roc_samples(evals: Sequence[ImageEval]) -> tuple[np.ndarray, np.ndarray]:
    """Score ``1 - P(with_mask)`` (0 when missed) and label "is without_mask" of every true
    ``with_mask``/``without_mask`` face."""
    scores, labels = [], []
    for e in evals:
        for t, lab in enumerate(e.scene.labels):
            if lab in ("with_mask", "without_mask"):
                p = int(e.match[t])
                scores.append(0.0 if p < 0 else 1.0 - float(e.p_masked[p]))
                labels.append(lab == "without_mask")
    return np.array(scores, np.float64), np.array(labels, bool)


def pipeline_roc(evals: Sequence[ImageEval]):
    """``(RocCurve, auc)`` of the pipeline, or ``None`` without both classes."""
    from maskface.eval.metrics import roc_auc, roc_curve

    scores, labels = roc_samples(evals)
    if labels.all() or not labels.any() or np.isnan(scores).any():
        return None
    return roc_curve(scores, labels), roc_auc(scores, labels)


def evaluate(scenes: Sequence[SceneImage], pipeline, progress: Callable | None = None
             ) -> list[ImageEval]:
    """Run ``pipeline`` (a :class:`maskface.pipeline.Pipeline`) on every scene.

    ``progress`` wraps the scene iterator (e.g. ``tqdm``)."""
    classified = pipeline.classifier is not None
    evals = []
    it = progress(scenes) if progress else scenes
    for scene in it:
        t0 = time.perf_counter()
        result = pipeline.analyze(scene.path)
        ms = (time.perf_counter() - t0) * 1e3
        boxes = np.array([f.box for f in result.faces], np.float64).reshape(-1, 4)
        scores = np.array([f.score for f in result.faces], np.float64)
        if classified:
            labels = [f.mask.label if f.mask else None for f in result.faces]
            p_masked = np.array([f.mask.probabilities.get("with_mask", float(f.mask.compliant))
                                 if f.mask else np.nan for f in result.faces], np.float64)
            p_label = np.array([f.mask.probability if f.mask else np.nan
                                for f in result.faces], np.float64)
        else:
            labels, p_masked = [None] * len(boxes), np.full(len(boxes), np.nan)
            p_label = np.full(len(boxes), np.nan)
        evals.append(ImageEval(scene, boxes, scores, labels, p_masked, time_ms=ms,
                               stage_ms=dict(result.timings_ms), p_label=p_label))
    return evals


def timing(evals: Sequence[ImageEval]) -> dict[str, float]:
    """Mean and median wall time per image, and the mean of each pipeline stage."""
    if not evals:
        return {}
    t = np.array([e.time_ms for e in evals])
    out = {"per_image_mean_ms": round(float(t.mean()), 1),
           "per_image_median_ms": round(float(np.median(t)), 1)}
    for stage in ("decode", "detect", "classify"):
        vals = [e.stage_ms[stage] for e in evals if stage in e.stage_ms]
        if vals:
            out[f"{stage}_mean_ms"] = round(float(np.mean(vals)), 1)
    return out


def plot_examples(evals: Sequence[ImageEval], path: str | Path, n: int = 6,
                  width: int = 480) -> Path:
    """A grid of ``n`` scenes with true boxes in green (red when missed) and predictions in
    magenta (score and label): half the scenes with the most errors (missed, falsely detected or
    misclassified faces), half with the most masked faces."""
    import cv2

    def errors(e: ImageEval) -> int:
        wrong = sum(1 for t, p in enumerate(e.match)
                    if p >= 0 and e.labels[p] is not None and e.labels[p] != e.scene.labels[t])
        return int((e.match < 0).sum()) + len(e.false_detections) + wrong

    by_errors = sorted(evals, key=lambda e: (-errors(e), -len(e.scene), e.scene.name))
    picks = by_errors[: n // 2]
    by_masked = sorted((e for e in evals if e not in picks),
                       key=lambda e: (-e.scene.labels.count("with_mask"), e.scene.name))
    picks += by_masked[: n - len(picks)]
    tiles = []
    from maskface.io import load_image

    for e in picks:
        img = load_image(e.scene.path)
        f = width / img.shape[1]
        img = cv2.resize(img, (width, max(1, round(img.shape[0] * f))),
                         interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        for t, box in enumerate(e.scene.boxes):
            colour = (0, 200, 0) if e.match[t] >= 0 else (0, 0, 255)
            _rect(img, box * f, colour, 2)
        for i, box in enumerate(e.boxes):
            _rect(img, box * f, (255, 0, 255), 1)
            lab = e.labels[i]
            text = f"{e.scores[i]:.2f}" + ("" if lab is None else f" {_short(lab)}")
            x, y = int(box[0] * f), max(10, int(box[1] * f) - 3)
            cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 0, 255), 1,
                        cv2.LINE_AA)
        cv2.putText(img, drawable(e.scene.name), (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(img)
    rows = []
    for k in range(0, len(tiles), 2):
        pair = tiles[k : k + 2]
        h = max(t.shape[0] for t in pair)
        pair = [cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 0, cv2.BORDER_CONSTANT) for t in pair]
        if len(pair) == 1:
            pair.append(np.zeros_like(pair[0]))
        rows.append(np.hstack(pair))
    grid = np.vstack(rows) if rows else np.zeros((32, 2 * width, 3), np.uint8)
    legend = np.full((22, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(legend, "green: true face found   red: true face missed   magenta: prediction "
                "(score, label)", (6, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    return write_image(path, np.vstack([legend, grid]))


@dataclass(frozen=True)
class FaceError:
    """A true face the pipeline got wrong: ``kind`` is "wrong" (labelled wrongly), "loose box"
    (found only at IoU > 0.3) or "missed"."""

    kind: str
    eval: ImageEval
    index: int  # the true face's index in the scene

    @property
    def height(self) -> float:
        box = self.eval.scene.boxes[self.index]
        return float(box[3] - box[1])


def face_errors(evals: Sequence[ImageEval], limit: int = 64) -> list[FaceError]:
    """Up to ``limit`` faces got wrong: wrongly labelled first, then missed (half each when
    both are many), the largest (the least excusable) first within each."""
    wrong, missed = [], []
    for e in evals:
        for t, p in enumerate(e.match):
            if p < 0:
                missed.append(FaceError("loose box" if e.loose_match[t] >= 0 else "missed", e, t))
            elif e.labels[p] is not None and e.labels[p] != e.scene.labels[t]:
                wrong.append(FaceError("wrong", e, t))
    for errs in (wrong, missed):
        errs.sort(key=lambda f: (-f.height, f.eval.scene.name, f.index))
    n_wrong = min(len(wrong), max(limit // 2, limit - len(missed)))
    return wrong[:n_wrong] + missed[: limit - n_wrong]


def plot_errors(evals: Sequence[ImageEval], path: str | Path, limit: int = 64,
                size: int = 128) -> Path | None:
    """A sheet of :func:`face_errors`, each face cut out with some context, its true box drawn
    and its caption; ``None`` (nothing written) when every face was right."""
    from maskface.classify.crop import face_crop
    from maskface.draw import image_grid
    from maskface.eval.plots import short_name
    from maskface.geometry import square_crop_box
    from maskface.io import load_image

    picks = face_errors(evals, limit)
    if not picks:
        return None
    by_path: dict[Path, list[int]] = {}
    for k, f in enumerate(picks):
        by_path.setdefault(f.eval.scene.path, []).append(k)
    scale = 1.8
    crops: dict[int, np.ndarray] = {}
    for scene_path, ks in by_path.items():  # each photo read once, one at a time
        image = load_image(scene_path)
        for k in ks:
            box = picks[k].eval.scene.boxes[picks[k].index]
            crop = face_crop(image, box, size, scale=scale)
            # the true box drawn in, to say which face of a crowd is meant
            x0, y0, x1, _ = square_crop_box(box, scale)
            _rect(crop, (box - [x0, y0, x0, y0]) * (size / (x1 - x0)),
                  (0, 200, 0) if picks[k].kind == "wrong" else (0, 0, 255), 1)
            crops[k] = crop
    cells = []
    for k, f in enumerate(picks):
        e, t = f.eval, f.index
        truth = e.scene.labels[t]
        if f.kind == "wrong":
            said = e.labels[e.match[t]]
            first = f"said {SHORT_LABELS.get(said, said)}"
        else:
            first = f"{f.kind}, {f.height:.0f} px"
        cells.append((crops[k], [first, f"true {SHORT_LABELS.get(truth, truth)}",
                                 short_name(f"{e.scene.name}#{t}")]))
    return write_image(path, image_grid(cells, columns=8))


def _short(label: str) -> str:
    return {"with_mask": "mask", "without_mask": "NO", "mask_incorrect": "incorr"}.get(label,
                                                                                      label)


def _rect(img: np.ndarray, box: np.ndarray, colour: tuple[int, int, int], thick: int) -> None:
    import cv2

    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cv2.rectangle(img, (x1, y1), (x2, y2), colour, thick)

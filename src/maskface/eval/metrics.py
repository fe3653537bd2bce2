"""Classification and verification metrics in plain numpy (no scikit-learn).

General building blocks shared by every evaluation: ROC curve and AUC from scores, TAR at a
given FAR, confusion matrices, per-class precision/recall/F1 and calibration of the answers'
probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RocCurve:
    """False/true positive rates at every distinct threshold, thresholds descending.

    The first point is (0, 0) at threshold ``+inf``; the last is (1, 1)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray

    def to_dict(self, max_points: int = 200) -> dict[str, list[float]]:
        """The curve, thinned to at most ``max_points`` points for a JSON report."""
        idx = np.unique(np.linspace(0, len(self.fpr) - 1, min(len(self.fpr), max_points))
                        .round().astype(int))
        th = [float(t) if np.isfinite(t) else None for t in self.thresholds[idx]]
        return {"fpr": [round(float(v), 6) for v in self.fpr[idx]],
                "tpr": [round(float(v), 6) for v in self.tpr[idx]], "thresholds": th}


def _binary(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if labels.dtype != bool and not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be booleans or 0/1 (arguments are scores, labels)")
    labels = labels.astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in length")
    return scores, labels


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> RocCurve:
    """ROC of ``scores`` (higher = more positive) against boolean ``labels``.

    Tied scores form one threshold, so the curve is exact (no ordering artefacts)."""
    scores, labels = _binary(scores, labels)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC needs both positive and negative samples")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    # Last index of each run of equal scores: the curve steps once per distinct threshold.
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    tpr = np.r_[0.0, tp / n_pos]
    fpr = np.r_[0.0, fp / n_neg]
    return RocCurve(fpr, tpr, np.r_[np.inf, s[last]])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random
    negative (ties count one half)."""
    curve = roc_curve(scores, labels)
    return float(np.trapezoid(curve.tpr, curve.fpr))


def _at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> tuple[float, float]:
    curve = roc_curve(scores, labels)
    ok = np.nonzero(curve.fpr <= far + 1e-12)[0]
    k = ok[-1]  # fpr is non-decreasing, so the last admissible point has the highest tpr
    return float(curve.tpr[k]), float(curve.thresholds[k])


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """True-accept rate at the loosest threshold whose false-accept rate is still ``<= far``
    (a sample is accepted when ``score >= threshold``)."""
    return _at_far(scores, labels, far)[0]


def threshold_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """The decision threshold of :func:`tar_at_far` (``inf`` when no threshold reaches it)."""
    return _at_far(scores, labels, far)[1]


def impostor_threshold(impostor: np.ndarray, far: float) -> float:
    """The lowest threshold letting at most ``far`` of these impostor scores through (accept:
    ``score >= threshold``), from impostor scores alone: for calibrating an operating point
    where no genuine scores exist (``nan`` for no scores)."""
    s = np.sort(np.asarray(impostor, np.float64))
    if len(s) == 0:
        return float("nan")
    k = int(np.floor(far * len(s)))  # impostors allowed at or above the threshold
    return float(s[len(s) - k - 1] + 1e-6) if k < len(s) else float(s[0])


def bootstrap_ci(stat: Callable[[list[np.ndarray]], float], strata: Sequence[np.ndarray],
                 resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of ``stat`` over bootstrap resamples.

    Each stratum (an array of sample indices: e.g. genuine and impostor pairs, known and
    unknown people, whose numbers a protocol fixes) is resampled with replacement on its own;
    ``stat`` gets the indices drawn from each stratum."""
    rng = np.random.default_rng(seed)
    values = np.array([stat([s[rng.integers(0, len(s), len(s))] for s in strata])
                       for _ in range(resamples)])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def interval_text(interval: Sequence[float | None] | None) -> str:
    """A report's ``[lo, hi]`` (rates) for a summary line: `` (95 % interval a%-b%)``; empty
    where the report has none."""
    lo, hi = interval or (None, None)
    return "" if lo is None or hi is None else f" (95 % interval {lo:.2%}-{hi:.2%})"


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> dict:
    """How far the probability of each answer is from how often such answers are right.

    ``confidence`` is the probability the model gave its answer, ``correct`` whether the
    answer was right. Equal-width bins over ``(0, 1]``; ``ece`` is the mean of
    ``|accuracy - confidence|`` over the bins weighted by their counts (expected calibration
    error), ``mce`` the largest gap of a bin; ``mean_confidence`` against ``accuracy`` says
    which way the model errs. Empty bins are left out of ``bins``."""
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    right = np.asarray(correct, dtype=bool).ravel()
    if not len(conf):
        return {"ece": None, "mce": None, "mean_confidence": None, "accuracy": None,
                "bins": []}
    edges = np.linspace(0.0, 1.0, bins + 1)
    k = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    rows, ece, mce = [], 0.0, 0.0
    for b in range(bins):
        m = k == b
        if not m.any():
            continue
        c, a = float(conf[m].mean()), float(right[m].mean())
        ece += m.mean() * abs(a - c)
        mce = max(mce, abs(a - c))
        rows.append({"low": round(float(edges[b]), 4), "high": round(float(edges[b + 1]), 4),
                     "n": int(m.sum()), "confidence": round(c, 5), "accuracy": round(a, 5)})
    return {"ece": round(float(ece), 5), "mce": round(float(mce), 5),
            "mean_confidence": round(float(conf.mean()), 5),
            "accuracy": round(float(right.mean()), 5), "bins": rows}


def calibration_text(cal: dict | None) -> str:
    """A report's :func:`calibration` for a summary line; empty where it has none."""
    if not cal or cal.get("ece") is None:
        return ""
    return (f"ECE {cal['ece']:.3f}, mean probability of the answer "
            f"{cal['mean_confidence']:.2%} against accuracy {cal['accuracy']:.2%}")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``i`` predicted as ``j``."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


def per_class_metrics(cm: np.ndarray) -> list[ClassMetrics]:
    """Precision, recall, F1 and support for each class of a confusion matrix (0 when
    undefined, e.g. precision of a class never predicted)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    pred = cm.sum(0)
    true = cm.sum(1)
    out = []
    for k in range(len(cm)):
        p = tp[k] / pred[k] if pred[k] else 0.0
        r = tp[k] / true[k] if true[k] else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        out.append(ClassMetrics(float(p), float(r), float(f), int(true[k])))
    return out


def classification_report(probs: np.ndarray, y_true: np.ndarray, labels: Sequence[str],
                          positive: int = 0) -> dict:
    """Accuracy, per-class P/R/F1, confusion matrix and ROC AUC of predicted probabilities.

    Binary: ``roc_auc`` scores class ``positive`` (``with_mask``) by its probability.
    More classes: one-vs-rest AUC per class and their macro mean (classes absent from
    ``y_true`` are skipped)."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    n = len(labels)
    y_pred = probs.argmax(1) if len(probs) else np.zeros(0, np.int64)
    cm = confusion_matrix(y_true, y_pred, n)
    classes = per_class_metrics(cm)
    report: dict = {
        "n": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else float("nan"),
        "labels": list(labels),
        "per_class": {lab: vars(m) for lab, m in zip(labels, classes)},
        "macro_f1": float(np.mean([m.f1 for m in classes if m.support])) if len(y_true)
        else float("nan"),
        "confusion_matrix": cm.tolist(),
    }
    aucs = {}
    for k, lab in enumerate(labels):
        pos = y_true == k
        if pos.any() and (~pos).any():
            aucs[lab] = roc_auc(probs[:, k], pos)
    if n == 2:
        report["roc_auc"] = aucs.get(labels[positive], float("nan"))
    else:
        report["roc_auc"] = float(np.mean(list(aucs.values()))) if aucs else float("nan")
        report["roc_auc_per_class"] = aucs
    return report

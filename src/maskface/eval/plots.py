"""Evaluation plots (matplotlib, headless): ROC curves, confusion matrices, reliability
diagrams and contact sheets as PNG files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from maskface.eval.metrics import RocCurve


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Lay ``fig`` out tightly, write it to ``path`` and close it (figures are not kept)."""
    plt = _pyplot()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_roc(curves: Mapping[str, tuple[RocCurve, float]], path: str | Path,
             title: str = "ROC curve") -> Path:
    """One ROC line per entry of ``curves`` (``name -> (curve, auc)``), written to ``path``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for name, (curve, auc) in curves.items():
        ax.plot(curve.fpr, curve.tpr, lw=1.8, label=f"{name} (AUC {auc:.4f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title,
           xlim=(-0.01, 1.0), ylim=(0.0, 1.01))
    ax.grid(alpha=0.3)
    if curves:  # no curve (nothing to compare yet): no legend, and no matplotlib warning
        ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def plot_confusion(cm: np.ndarray, labels: Sequence[str], path: str | Path,
                   pred_labels: Sequence[str] | None = None,
                   title: str = "confusion matrix") -> Path:
    """Counts with row-normalised shading (rows: true class, columns: predicted class)."""
    plt = _pyplot()
    cm = np.asarray(cm)
    pred_labels = list(pred_labels or labels)
    rows = cm.sum(1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * cm.shape[1], 1.2 + 1.1 * cm.shape[0]))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}\n{frac[i, j]:.1%}", ha="center", va="center",
                    color="white" if frac[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(cm.shape[1]), pred_labels, rotation=20)
    ax.set_yticks(range(cm.shape[0]), list(labels))
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return save_figure(fig, path)


def plot_reliability(cal: Mapping, path: str | Path, title: str = "reliability") -> Path:
    """A reliability diagram of :func:`maskface.eval.metrics.calibration`: how often the
    answer is right against its probability, bin by bin, with each bin's share of the faces
    below; a calibrated model lies on the diagonal."""
    plt = _pyplot()
    rows = list(cal["bins"])
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(4.8, 5.2), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    mid = [(r["low"] + r["high"]) / 2 for r in rows]
    width = [r["high"] - r["low"] for r in rows]
    ax.bar(mid, [r["accuracy"] for r in rows], width=width, edgecolor="black",
           color="tab:blue", alpha=0.75, label="accuracy in the bin")
    ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], "o",
            color="tab:orange", ms=4, label="mean probability, accuracy")
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.01),
           title=f"{title}: ECE {cal['ece']:.3f}" if cal["ece"] is not None else title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    n = sum(r["n"] for r in rows) or 1
    ax_n.bar(mid, [r["n"] / n for r in rows], width=width, color="grey", edgecolor="black")
    ax_n.set(xlabel="probability of the answer", ylabel="share")
    return save_figure(fig, path)


def plot_sheet(crops: Sequence[np.ndarray], captions: Sequence[Sequence[str]],
                path: str | Path, columns: int = 8, size: int | None = 128, limit: int = 64
                ) -> Path:
    """The first ``limit`` images (crops as the model saw them), each over its caption lines;
    each fitted into a ``size`` square (``None``: as they are)."""
    from maskface.draw import image_grid, thumbnail, write_image

    cells = [(c if size is None else thumbnail(c, size), lines)
             for c, lines in zip(crops[:limit], captions[:limit])]
    return write_image(path, image_grid(cells, columns))


def short_name(name: str | Path) -> str:
    """A face's file name cut to fit under a thumbnail: ``…/abc.jpg#3`` (the fourth box of a
    scenes photo) -> ``abc#3``; a plain path -> its stem's last 11 characters."""
    path, _, face = str(name).partition("#")
    return Path(path).stem[-11:] + (f"#{face}" if face else "")


def plot_intervals(rows: Mapping[str, Mapping], path: str | Path,
                   title: str = "B - A, 95 % interval") -> Path:
    """One row per figure of a paired comparison (``maskface eval compare``): the difference
    and its interval, in percentage points (counts for names ending ``_per_image``); rows
    whose interval excludes 0 in colour."""
    plt = _pyplot()
    items = list(rows.items())[::-1]
    fig, ax = plt.subplots(figsize=(6.4, 1.0 + 0.38 * len(items)))
    for y, (name, r) in enumerate(items):
        scale = 1.0 if name.endswith("_per_image") else 100.0
        lo, hi = (v * scale for v in r["ci95"])
        colour = "tab:blue" if r["significant"] else "grey"
        ax.plot([lo, hi], [y, y], color=colour, lw=2)
        ax.plot(r["difference"] * scale, y, "o", color=colour)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(items)), [name for name, _ in items], fontsize=8)
    ax.set(xlabel="difference, percentage points (per-image counts as they are)", title=title)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)

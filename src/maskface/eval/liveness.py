"""Liveness evaluation in ISO/IEC 30107-3 terms on a folder of frames.

Layout: ``DIR/real/<subject>/*.jpg`` (bona fide presentations) and one folder per attack type
(``DIR/print/<subject>/*.jpg``, ``DIR/replay/...``). Each frame runs through our own detector;
the most confident face is scored (the reference pipeline's rule). A frame with no face is
kept: an attack without a face is not accepted, a bona fide frame without one is rejected.

- APCER: share of attack presentations accepted as live (per attack type; the worst is used)
- BPCER: share of bona fide presentations rejected
- ACER: (worst APCER + BPCER) / 2
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maskface.errors import InputError
from maskface.eval.metrics import roc_auc, roc_curve, tar_at_far

BONA_FIDE = ("real", "live", "bona_fide")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass(frozen=True)
class Frame:
    path: Path
    kind: str  # "real" or the attack folder's name
    subject: str

    @property
    def bona_fide(self) -> bool:
        return self.kind in BONA_FIDE


def list_frames(root: str | Path) -> list[Frame]:
    """Every image under ``root/<kind>/<subject>/``; needs a bona fide folder and an attack."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"liveness data folder not found: {root}")
    frames = []
    for kind_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(kind_dir.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                rel = path.relative_to(kind_dir).parts
                subject = rel[0] if len(rel) > 1 else "-"
                frames.append(Frame(path, kind_dir.name.lower(), subject))
    kinds = {f.kind for f in frames}
    if not kinds & set(BONA_FIDE) or not kinds - set(BONA_FIDE):
        raise InputError(f"{root}: need a bona fide folder ({'/'.join(BONA_FIDE)}) and at least "
                         f"one attack folder, each with images; found: {sorted(kinds) or 'none'}")
    return frames


def rates(scores: np.ndarray, bona: np.ndarray, kinds: np.ndarray,
          threshold: float) -> dict[str, Any]:
    """APCER per attack type, BPCER and ACER at ``threshold`` (accept: score >= threshold)."""
    accept = scores >= threshold
    apcer = {k: float(accept[kinds == k].mean()) for k in sorted(set(kinds[~bona]))}
    bpcer = float((~accept[bona]).mean())
    worst = max(apcer.values())
    return {"threshold": threshold, "apcer": worst, "apcer_per_attack": apcer,
            "bpcer": bpcer, "acer": (worst + bpcer) / 2,
            "attacks_accepted": int(accept[~bona].sum()), "attacks": int((~bona).sum()),
            "bona_fide_rejected": int((~accept[bona]).sum()), "bona_fide": int(bona.sum())}


def bpcer_at_apcer(scores: np.ndarray, bona: np.ndarray, apcer: float) -> dict[str, float]:
    """BPCER at the loosest threshold whose APCER (over all attacks) is still <= ``apcer``."""
    from maskface.eval.metrics import threshold_at_far

    tar = tar_at_far(scores, bona, apcer)
    th = threshold_at_far(scores, bona, apcer)
    return {"bpcer": 1.0 - tar, "threshold": float(th) if np.isfinite(th) else None}


def score_frames(frames: list[Frame], detector, checker,
                 progress: Callable | None = None, grey: bool = False) -> list[dict[str, Any]]:
    """Detect and score each frame (made grey first with ``grey``, as an infrared camera
    would deliver it); ``score`` is ``None`` where no face was found. The score is the
    model's own: the door gives grey frames no verdict (``maskface.liveness``)."""
    from maskface.io.image import grey_copy, load_image

    rows = []
    it = progress(frames) if progress else frames
    for fr in it:
        image = load_image(fr.path)
        if grey:
            image = grey_copy(image)
        det = detector.detect(image)
        row: dict[str, Any] = {"path": str(fr.path), "kind": fr.kind, "subject": fr.subject,
                               "faces": len(det), "score": None, "box": None}
        if len(det):
            i = int(np.argmax(det.scores))
            row["score"] = float(checker.scores(image, det.boxes[i:i + 1])[0])
            row["box"] = [round(float(v), 1) for v in det.boxes[i]]
        rows.append(row)
    return rows


def summarize(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """All figures of the report from the per-frame rows."""
    # No face: the attack is not accepted (score -1), the bona fide frame is rejected.
    scores = np.array([-1.0 if r["score"] is None else r["score"] for r in rows])
    kinds = np.array([r["kind"] for r in rows])
    bona = np.isin(kinds, BONA_FIDE)
    out: dict[str, Any] = {
        "frames": len(rows), "no_face": int(sum(r["score"] is None for r in rows)),
        "subjects": sorted({r["subject"] for r in rows}),
        "at_threshold": rates(scores, bona, kinds, threshold),
        "bpcer_at_apcer_1pct": bpcer_at_apcer(scores, bona, 0.01),
        "bpcer_at_apcer_5pct": bpcer_at_apcer(scores, bona, 0.05),
        "roc_auc": roc_auc(scores, bona),
        "roc": roc_curve(scores, bona).to_dict(),
    }
    per = {}
    subj = np.array([r["subject"] for r in rows])
    for s in out["subjects"]:
        m = subj == s
        acc = scores[m] >= threshold
        per[s] = {"attacks_accepted": int(acc[~bona[m]].sum()), "attacks": int((~bona[m]).sum()),
                  "bona_fide_rejected": int((~acc[bona[m]]).sum()),
                  "bona_fide": int(bona[m].sum())}
    out["per_subject"] = per
    return out


def plot_histogram(rows: list[dict[str, Any]], threshold: float, path: str | Path) -> Path:
    """Score histogram per presentation kind, with the operating threshold."""
    from maskface.eval.plots import _pyplot, save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    bins = np.linspace(0, 1, 41)
    for kind in sorted({r["kind"] for r in rows}):
        s = [r["score"] for r in rows if r["kind"] == kind and r["score"] is not None]
        ax.hist(s, bins=bins, alpha=0.6, label=f"{kind} ({len(s)})")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set(xlabel="live score (mean live probability)", ylabel="frames", yscale="log",
           title="liveness scores")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def frame_errors(rows: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    """The frames judged wrongly at ``threshold``: attacks accepted (highest score first),
    then bona fide frames rejected (lowest first), then frames without a face."""
    def accepted(r):
        return r["score"] is not None and r["score"] >= threshold

    attacks = [r for r in rows if r["kind"] not in BONA_FIDE and accepted(r)]
    rejected = [r for r in rows if r["kind"] in BONA_FIDE and r["score"] is not None
                and not accepted(r)]
    no_face = [r for r in rows if r["kind"] in BONA_FIDE and r["score"] is None]
    return (sorted(attacks, key=lambda r: -r["score"]) + sorted(rejected, key=lambda r: r["score"])
            + no_face)


def plot_errors(rows: list[dict[str, Any]], threshold: float, path: str | Path,
                grey: bool = False, limit: int = 48) -> Path | None:
    """A sheet of :func:`frame_errors`: each face with its surroundings (the whole frame when
    none was found), as scored; ``None`` when every frame was judged right."""
    from maskface.classify.crop import face_crop, whole_image_crop
    from maskface.eval.plots import plot_sheet
    from maskface.io.image import grey_copy, load_image

    wrong = frame_errors(rows, threshold)[:limit]
    if not wrong:
        return None
    crops, captions = [], []
    for r in wrong:
        image = load_image(r["path"])
        if grey:
            image = grey_copy(image)
        crops.append(whole_image_crop(image, 128) if r["box"] is None
                     else face_crop(image, np.array(r["box"]), 128, scale=2.0))
        kind = "live" if r["kind"] in BONA_FIDE else r["kind"]
        if r["score"] is None:
            lines = (f"{kind}, no face", "rejected")
        else:
            lines = (f"{kind}, {'accepted' if r['score'] >= threshold else 'rejected'}",
                     f"score {r['score']:.3f}")
        captions.append((*lines, f"{r['subject']}/{Path(r['path']).stem}"))
    return plot_sheet(crops, captions, path)

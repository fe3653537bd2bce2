"""Face verification protocol: pairs of photos, same person or not, k-fold accuracy.

Two pair sources:

* **LFW View 2** (``--lfw DIR``): ``DIR/pairs.txt`` with a ``<folds> <n>`` header, then per fold
  ``n`` matched lines ``name i j`` and ``n`` mismatched lines ``name1 i name2 j``; images at
  ``DIR/images/<name>/<name>_<NNNN>.jpg``.
* **CSV** (``--pairs FILE``): columns ``path_a,path_b,same`` (paths relative to the CSV, ``same``
  1/0 or true/false); the pairs are split into ten contiguous folds.

Every fold's threshold is chosen on the other folds (best accuracy there) and applied to it; the
report gives the mean and standard deviation of the fold accuracies, ROC AUC, TAR at FAR 1e-3 and
a PNG of the same/different score histograms. ``mask`` masks the second image of each pair
(``one``) or both (``both``) synthetically, seeded per image.
"""

from __future__ import annotations

import csv
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maskface.errors import InputError, MaskfaceError

log = logging.getLogger(__name__)

MASK_MODES = ("none", "one", "both")


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool
    fold: int


def read_lfw_pairs(lfw_dir: str | Path) -> list[Pair]:
    """The pairs of an LFW View-2 ``pairs.txt`` (any number of folds)."""
    root = Path(lfw_dir)
    path = root / "pairs.txt"
    if not path.is_file():
        raise InputError(f"{root}: no pairs.txt (expected LFW View-2 layout)")
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    try:
        n_folds, n = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError):
        raise InputError(f"{path}: first line must be '<folds> <pairs per class>'") from None
    if len(lines) - 1 != n_folds * 2 * n:
        raise InputError(f"{path}: header promises {n_folds}x{2 * n} pairs, file has "
                         f"{len(lines) - 1}")

    def img(name: str, idx: str) -> Path:
        return root / "images" / name / f"{name}_{int(idx):04d}.jpg"

    pairs = []
    for k, parts in enumerate(lines[1:]):
        fold = k // (2 * n)
        if len(parts) == 3:
            pairs.append(Pair(img(parts[0], parts[1]), img(parts[0], parts[2]), True, fold))
        elif len(parts) == 4:
            pairs.append(Pair(img(parts[0], parts[1]), img(parts[2], parts[3]), False, fold))
        else:
            raise InputError(f"{path}: line {k + 2} is neither 'name i j' nor 'a i b j'")
    return pairs


_TRUE = {"1", "true", "yes", "same"}
_FALSE = {"0", "false", "no", "different"}


def read_pairs_csv(csv_path: str | Path, n_folds: int = 10) -> list[Pair]:
    """Pairs from a ``path_a,path_b,same`` CSV, in ``n_folds`` contiguous folds."""
    path = Path(csv_path)
    if not path.is_file():
        raise InputError(f"{path}: pairs CSV not found")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"path_a", "path_b", "same"} <= set(rows[0]):
        raise InputError(f"{path}: needs a header with columns path_a,path_b,same")
    out = []
    for i, row in enumerate(rows):
        flag = str(row["same"]).strip().lower()
        if flag not in _TRUE | _FALSE:
            raise InputError(f"{path}: row {i + 2}: 'same' must be 1/0 or true/false")
        out.append(Pair(path.parent / row["path_a"], path.parent / row["path_b"],
                        flag in _TRUE, i * n_folds // len(rows)))
    if n_folds < 2 or len(out) < n_folds:
        raise InputError(f"{path}: need at least {max(n_folds, 2)} pairs for {n_folds} folds")
    if len({p.same for p in out}) < 2:
        raise InputError(f"{path}: needs both same-person and different-person pairs")
    return out


# -- scores -> accuracy ---------------------------------------------------------------------
def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the best accuracy on these pairs (midpoint between scores)."""
    s = np.sort(np.unique(scores))
    cands = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
    acc = [((scores >= t) == same).mean() for t in cands]
    return float(cands[int(np.argmax(acc))])


def fold_accuracies(scores: np.ndarray, same: np.ndarray, folds: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy of each fold at the threshold chosen on the other folds."""
    accs, ths = [], []
    for k in np.unique(folds):
        test = folds == k
        t = best_threshold(scores[~test], same[~test])
        accs.append(((scores[test] >= t) == same[test]).mean())
        ths.append(t)
    return np.array(accs), np.array(ths)


# -- images -> embeddings ---------------------------------------------------------------------
MaskFn = Callable[[np.ndarray, Any, int], np.ndarray]


class PairEmbedder:
    """Embeds each distinct (image, masked) once per run: find the central face (centred
    fallback when none is detected), optionally mask it synthetically and re-detect, align,
    embed. Counts the fallbacks for the report.

    With ``crop_cache`` (an ``.npz`` file) the aligned crops, and what happened while making
    them, are kept across runs, so comparing embedders does not redo detection and masking;
    the file is specific to the seed and masking function.
    """

    EVENTS = ("no_face_fallback", "mask_failed", "masked_not_redetected")

    def __init__(self, embedder, detector, mask_fn: MaskFn | None = None, seed: int = 0,
                 crop_cache: str | Path | None = None):
        self.embedder = embedder
        self.detector = detector
        self.mask_fn = mask_fn
        self.seed = seed
        self.cache: dict[tuple[Path, bool], np.ndarray] = {}
        self.crop_cache = Path(crop_cache) if crop_cache else None
        self._crops: dict[tuple[Path, bool], tuple[np.ndarray, str]] = {}
        self._dirty = False
        if self.crop_cache and self.crop_cache.is_file():
            with np.load(self.crop_cache) as z:
                for p, m, ev, c in zip(z["paths"], z["masked"], z["events"], z["crops"]):
                    self._crops[(Path(str(p)), bool(m))] = (c, str(ev))
        self.counts = {"images": 0, **dict.fromkeys(self.EVENTS, 0)}

    def _align(self, path: Path, masked: bool) -> tuple[np.ndarray, str]:
        """The aligned crop and the events met making it (comma-separated)."""
        from maskface.align import align_face
        from maskface.io import load_image
        from maskface.recognize.faces import central_face

        image = load_image(path)
        picked = central_face(self.detector, image)
        events = ["no_face_fallback"] if picked.how == "fallback" else []
        landmarks = picked.face.landmarks
        if masked:
            # Seeded per image, so 'one' and 'both' runs mask an image the same way.
            seed = zlib.crc32(f"{self.seed}:{path.name}".encode())
            try:
                image = self.mask_fn(image, picked.face, seed)
            except MaskfaceError as exc:  # no dense landmarks: the image stays unmasked
                log.debug("%s: not masked: %s", path, exc)
                return align_face(image, landmarks), ",".join(events + ["mask_failed"])
            again = central_face(self.detector, image)
            if again.how == "fallback":  # the detector missed the masked face: keep geometry
                events.append("masked_not_redetected")
            else:
                landmarks = again.face.landmarks
        return align_face(image, landmarks), ",".join(events)

    def aligned(self, path: Path, masked: bool) -> np.ndarray:
        """The aligned crop of one item (from the crop cache when there), counting events."""
        key = (Path(path), masked)
        if key not in self._crops:
            self._crops[key] = self._align(*key)
            self._dirty = True
        crop, events = self._crops[key]
        self.counts["images"] += 1
        for ev in filter(None, events.split(",")):
            self.counts[ev] += 1
        return crop

    def crop(self, path: Path, masked: bool) -> np.ndarray | None:
        """The aligned crop made for an item in this run (or read from the cache), if any."""
        got = self._crops.get((Path(path), masked))
        return None if got is None else got[0]

    def save_crops(self) -> None:
        if not (self.crop_cache and self._dirty):
            return
        keys = list(self._crops)
        self.crop_cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.crop_cache.with_suffix(".tmp.npz")
        np.savez(tmp, paths=np.array([str(p) for p, _ in keys]),
                 masked=np.array([m for _, m in keys]),
                 events=np.array([self._crops[k][1] for k in keys]),
                 crops=np.stack([self._crops[k][0] for k in keys]))
        tmp.replace(self.crop_cache)
        self._dirty = False

    def embed(self, items: Sequence[tuple[Path, bool]], progress: bool = True
              ) -> dict[tuple[Path, bool], np.ndarray]:
        from maskface.progress import progress as bar

        todo = [it for it in dict.fromkeys(items) if it not in self.cache]
        batch: list[tuple[tuple[Path, bool], np.ndarray]] = []

        def flush() -> None:
            # The mask state of a synthetically masked item is known; a mask-aware embedder
            # uses it (at the door, the mask classifier supplies it).
            emb = self.embedder.embed(np.stack([a for _, a in batch]),
                                      [k[1] for k, _ in batch])
            self.cache.update({k: e for (k, _), e in zip(batch, emb)})
            batch.clear()

        try:
            for it in bar(todo, desc="embed", unit="img", show=progress, leave=False):
                batch.append((it, self.aligned(*it)))
                if len(batch) == 32:
                    flush()
            if batch:
                flush()
        finally:
            self.save_crops()  # keep what was done, even when interrupted
        return self.cache


class TemplateEmbedder:
    """Masked enrolment templates of unmasked photos (:mod:`maskface.recognize.templates`):
    the central face's masked copies, aligned on its landmarks, embedded as masked faces.
    Crops are kept in ``crop_cache`` (an ``.npz``) across runs like :class:`PairEmbedder`'s."""

    def __init__(self, embedder, detector, n: int, crop_cache: str | Path | None = None):
        self.embedder, self.detector, self.n = embedder, detector, n
        self.crop_cache = Path(crop_cache) if crop_cache else None
        self._crops: dict[Path, np.ndarray] = {}
        if self.crop_cache and self.crop_cache.is_file():
            with np.load(self.crop_cache) as z:
                for p, c, k in zip(z["paths"], z["crops"], z["counts"]):
                    self._crops[Path(str(p))] = c[:k]
        self.no_template = 0

    def crops(self, path: Path) -> np.ndarray:
        from maskface.io import load_image
        from maskface.recognize.faces import central_face
        from maskface.recognize.templates import template_crops

        if path not in self._crops:
            image = load_image(path)
            self._crops[path] = template_crops(image, central_face(self.detector, image).face,
                                               self.n, detector=self.detector)[0]
        return self._crops[path][: self.n]

    def embed(self, paths: Sequence[Path], progress: bool = True) -> dict[Path, np.ndarray]:
        """``(n, dim)`` template embeddings per photo (``(0, dim)`` when it could not be
        masked: no dense landmarks)."""
        from maskface.progress import progress as bar

        out = {}
        try:
            for p in bar(list(dict.fromkeys(paths)), desc="templates", unit="img",
                         show=progress, leave=False):
                c = self.crops(Path(p))
                self.no_template += len(c) == 0
                out[p] = self.embedder.embed(c, [True] * len(c)) if len(c) else \
                    np.zeros((0, self.embedder.dim), np.float32)
        finally:
            self._save()
        return out

    def _save(self) -> None:
        if not self.crop_cache or not self._crops:
            return
        keys = list(self._crops)
        n = max(max(len(self._crops[k]) for k in keys), 1)
        crops = np.zeros((len(keys), n, 112, 112, 3), np.uint8)
        for i, k in enumerate(keys):
            crops[i, : len(self._crops[k])] = self._crops[k]
        self.crop_cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.crop_cache.with_suffix(".tmp.npz")
        np.savez(tmp, paths=np.array([str(k) for k in keys]), crops=crops,
                 counts=np.array([len(self._crops[k]) for k in keys]))
        tmp.replace(self.crop_cache)


def template_scores(probes: np.ndarray, plain: np.ndarray, templates: Sequence[np.ndarray],
                    weight: float | None, offset: float = 0.0) -> np.ndarray:
    """Score of each masked probe against a gallery photo given its plain score and the
    photo's template embeddings: the gallery's rule (``Gallery.identify``), ``weight *
    best template + (1 - weight) * plain`` (``None``: the better of the two), the template's
    score taken ``offset`` lower (``maskface.gallery.thresholds.template_offset``)."""
    out = plain.copy()
    for i, (q, t) in enumerate(zip(probes, templates)):
        if len(t):
            st = float((t @ q).max()) - offset
            out[i] = max(st, plain[i]) if weight is None else \
                weight * st + (1 - weight) * plain[i]
    return out


def default_mask_fn() -> MaskFn:
    """Masks a face with a seeded random style from :mod:`maskface.synth` (worn correctly)."""
    from maskface.synth import apply_mask, random_style

    def mask(image: np.ndarray, face, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return apply_mask(image, face, random_style(rng))

    return mask


def evaluate_pairs(pairs: Sequence[Pair], embedder, detector, mask: str = "none",
                   seed: int = 0, mask_fn: MaskFn | None = None, progress: bool = True,
                   pair_embedder: PairEmbedder | None = None,
                   crop_cache: str | Path | None = None, templates: int = 0,
                   template_weight: float | None = None) -> dict[str, Any]:
    """Run the verification protocol; returns the report dict (scores included under
    ``"_scores"``/``"_same"`` for plotting and ``"_errors"``/``"_crops"`` (pair index -> its two
    aligned crops) for the errors sheet, stripped before writing).

    The first image of a pair plays the enrolled photo, the second the probe (scored through
    ``embedder.weigh`` by its mask state). With ``templates`` > 0 and ``mask="one"``, the
    unmasked first image also gets that many masked templates and the masked probe is scored
    by :func:`template_scores`.
    """
    from maskface.eval.metrics import roc_auc, tar_at_far

    if mask not in MASK_MODES:
        raise InputError(f"--mask must be one of {', '.join(MASK_MODES)}")
    if mask != "none" and mask_fn is None:
        mask_fn = default_mask_fn()
    t0 = time.perf_counter()
    pe = pair_embedder or PairEmbedder(embedder, detector, mask_fn, seed, crop_cache)
    items_a = [(p.a, mask == "both") for p in pairs]
    items_b = [(p.b, mask != "none") for p in pairs]
    missing = [str(p) for p, _ in items_a + items_b if not p.is_file()]
    if missing:
        raise InputError(f"{len(missing)} pair images not found, e.g. {missing[0]}")
    cache = pe.embed(items_a + items_b, progress)
    ea = np.stack([cache[k] for k in items_a])
    eb = np.stack([cache[k] for k in items_b])
    scores = (ea * embedder.weigh(eb, [m for _, m in items_b])).sum(1)
    extra: dict[str, Any] = {}
    if templates and mask == "one":
        tcache = Path(crop_cache).with_name(Path(crop_cache).stem + f"_templates{templates}d.npz") \
            if crop_cache else None
        te = TemplateEmbedder(embedder, detector, templates, tcache)
        temb = te.embed([p.a for p in pairs], progress)
        offset = 0.0
        if template_weight is None:  # the gallery's rule with the model's thresholds
            from maskface.gallery.thresholds import model_thresholds, template_offset

            fitted = model_thresholds(embedder.name)
            offset = template_offset(fitted) if fitted else 0.0
        scores = template_scores(embedder.weigh(eb, [True] * len(eb)), scores,
                                 [temb[p.a] for p in pairs], template_weight, offset)
        extra = {"templates_per_photo": templates, "template_weight": template_weight,
                 "template_offset": round(offset, 4),
                 "photos_without_templates": te.no_template}
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    accs, ths = fold_accuracies(scores, same, folds)
    errors = pair_errors(pairs, scores, dict(zip(np.unique(folds).tolist(), ths.tolist())))
    ci = pair_intervals(scores, same, folds, ths)
    return {
        "model": embedder.label,
        "mask": mask,
        "seed": seed,
        "pairs": len(pairs),
        "same_pairs": int(same.sum()),
        "different_pairs": int((~same).sum()),
        "folds": len(accs),
        "accuracy": round(float(accs.mean()), 5),
        "accuracy_std": round(float(accs.std()), 5),
        "fold_accuracy": [round(float(a), 5) for a in accs],
        "fold_threshold": [round(float(t), 4) for t in ths],
        "threshold": round(best_threshold(scores, same), 4),
        "roc_auc": round(roc_auc(scores, same), 5),
        "tar_at_far_1e-3": round(tar_at_far(scores, same, 1e-3), 5),
        "tar_at_far_1e-2": round(tar_at_far(scores, same, 1e-2), 5),
        **ci,
        "mean_score_same": round(float(scores[same].mean()), 4),
        "mean_score_different": round(float(scores[~same].mean()), 4),
        **{k: int(v) for k, v in pe.counts.items()},
        **extra,
        "n_errors": len(errors),
        "errors": errors[:100],
        "time_s": round(time.perf_counter() - t0, 1),
        "_scores": scores,
        "_same": same,
        "_errors": errors,
        "_crops": lambda i: (pe.crop(pairs[i].a, mask == "both"),
                             pe.crop(pairs[i].b, mask != "none")),
    }


def pair_intervals(scores: np.ndarray, same: np.ndarray, folds: np.ndarray,
                   fold_thresholds: np.ndarray, resamples: int = 2000) -> dict[str, Any]:
    """95 % bootstrap intervals of the accuracy (each pair judged at its fold's threshold) and
    of TAR at FAR 1e-3, genuine and impostor pairs resampled apart (their numbers are fixed by
    the protocol). With a few hundred impostor pairs, FAR 1e-3 sits at the highest impostor
    scores, so that TAR moves by whole points from one draw of pairs to the next."""
    from maskface.eval.metrics import bootstrap_ci, tar_at_far

    thr = fold_thresholds[np.searchsorted(np.unique(folds), folds)]
    right = (scores >= thr) == same
    strata = [np.flatnonzero(same), np.flatnonzero(~same)]
    if min(len(s) for s in strata) == 0:
        return {}

    def tar(parts: list[np.ndarray]) -> float:
        idx = np.concatenate(parts)
        return tar_at_far(scores[idx], same[idx], 1e-3)

    acc = bootstrap_ci(lambda parts: float(right[np.concatenate(parts)].mean()), strata,
                       resamples)
    tar_ci = bootstrap_ci(tar, strata, resamples)
    return {"accuracy_ci95": [round(v, 5) for v in acc],
            "tar_at_far_1e-3_ci95": [round(v, 5) for v in tar_ci],
            "ci_method": f"bootstrap, {resamples} resamples, genuine and impostor pairs "
                         "resampled apart; accuracy at each pair's fold threshold"}


def pair_errors(pairs: Sequence[Pair], scores: np.ndarray, thresholds: dict[int, float]
                ) -> list[dict[str, Any]]:
    """The pairs judged wrongly at their fold's threshold (the one chosen on the other folds),
    the furthest from it first."""
    thr = np.array([thresholds[p.fold] for p in pairs])
    same = np.array([p.same for p in pairs])
    wrong = np.flatnonzero((scores >= thr) != same)
    wrong = wrong[np.argsort(-np.abs(scores[wrong] - thr[wrong]), kind="stable")]
    return [{"index": int(i), "a": str(pairs[i].a), "b": str(pairs[i].b),
             "same": bool(pairs[i].same), "score": round(float(scores[i]), 4),
             "threshold": round(float(thr[i]), 4), "fold": int(pairs[i].fold)} for i in wrong]


def plot_pair_errors(errors: Sequence[dict[str, Any]], crops: Callable[[int], tuple],
                     path: str | Path, limit: int = 48) -> Path | None:
    """A sheet of wrongly judged pairs side by side, as the embedder saw them (aligned, masked
    where the run masked them), worst first; ``None`` when there are none."""
    from maskface.eval.plots import plot_sheet

    images, captions = [], []
    for e in errors[:limit]:
        a, b = crops(e["index"])
        if a is None or b is None:
            continue
        images.append(np.hstack([a, np.full((a.shape[0], 4, 3), 255, np.uint8), b]))
        kind = "same person" if e["same"] else "different people"
        sign = "<" if e["same"] else ">="
        captions.append((f"{kind}: {e['score']:.4f} {sign} {e['threshold']:.4f}",
                         Path(e["a"]).stem, Path(e["b"]).stem))
    if not images:
        return None
    return plot_sheet(images, captions, path, columns=4, size=None)


def plot_score_histograms(scores: np.ndarray, same: np.ndarray, threshold: float,
                          path: str | Path, title: str = "") -> Path:
    """Histograms of same-person and different-person scores with the threshold (PNG)."""
    from maskface.eval.plots import _pyplot, save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    bins = np.linspace(min(-0.2, scores.min()), 1.0, 60)
    ax.hist(scores[~same], bins=bins, alpha=0.6, label=f"different ({(~same).sum()})",
            color="tab:red")
    ax.hist(scores[same], bins=bins, alpha=0.6, label=f"same ({same.sum()})", color="tab:blue")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("pairs")
    ax.set_title(title)
    ax.legend()
    return save_figure(fig, path)

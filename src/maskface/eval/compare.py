"""Paired comparison of two runs on the same faces (``maskface eval compare``).

Two settings measured on one validation split differ by a few faces, and whether that is a
gain or the luck of the split decides what ships. Both runs' per-face outcomes (``per_face``
in a ``maskface eval pipeline`` report, ``per_crop`` in a ``maskface eval classifier`` one)
are resampled **by image** — faces of one photo share its light, crowd and annotator, so they
are not independent; a crop file is its own image — and every figure is recomputed for both
runs on the same resampled photos. The 95 % interval of the difference B - A then says whether
B's gain holds beyond the split's noise (an interval that excludes 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from maskface.errors import InputError
from maskface.eval.pipeline import LOOSE_IOU_THRESHOLD, SIZE_BINS
from maskface.eval.scenes import SCENE_LABELS

#: per-image counts every figure is a function of (``cm_i_j``: found faces of true class i
#: called j)
_COUNTS = ("images", "faces", "found", "found_loose", "small", "small_found", "without",
           "without_flagged", "with", "with_flagged", "false_detections",
           *(f"cm_{i}_{j}" for i in range(len(SCENE_LABELS)) for j in range(len(SCENE_LABELS))))
_IDX = {k: n for n, k in enumerate(_COUNTS)}
_SMALL_PX = SIZE_BINS[0][2]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.shape(num), np.nan), where=den > 0)


def _confusion(c: np.ndarray) -> np.ndarray:
    k = len(SCENE_LABELS)
    return np.stack([c[..., _IDX[f"cm_{i}_{j}"]] for i in range(k) for j in range(k)],
                    -1).reshape(*c.shape[:-1], k, k)


def _cm_key(true: str, predicted: str) -> int:
    """The count column of faces of class ``true`` called ``predicted``."""
    return _IDX[f"cm_{SCENE_LABELS.index(true)}_{SCENE_LABELS.index(predicted)}"]


def _recall(c: np.ndarray, k: int) -> np.ndarray:
    cm = _confusion(c)
    return _ratio(cm[..., k, k], cm[..., k, :].sum(-1))


def _f1(c: np.ndarray, k: int) -> np.ndarray:
    cm = _confusion(c)
    p = np.nan_to_num(_ratio(cm[..., k, k], cm[..., :, k].sum(-1)))
    r = np.nan_to_num(_recall(c, k))
    return _ratio(2 * p * r, p + r)


def _macro_f1(c: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    return np.mean([np.nan_to_num(_f1(c, k)) for k in classes], axis=0)


def _accuracy(c: np.ndarray) -> np.ndarray:
    cm = _confusion(c)
    return _ratio(np.trace(cm, axis1=-2, axis2=-1), cm.sum((-2, -1)))


def _metrics(classes: Sequence[int], classified: bool
             ) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The compared figures, each a function of summed counts ``(..., len(_COUNTS))``; the
    names are those of the pipeline report."""
    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "recall": lambda c: _ratio(c[..., _IDX["found"]], c[..., _IDX["faces"]]),
        f"recall_iou_{LOOSE_IOU_THRESHOLD}": lambda c: _ratio(c[..., _IDX["found_loose"]],
                                                             c[..., _IDX["faces"]]),
        f"recall_small (< {_SMALL_PX:.0f} px)": lambda c: _ratio(c[..., _IDX["small_found"]],
                                                                c[..., _IDX["small"]]),
        "false_detections_per_image": lambda c: _ratio(c[..., _IDX["false_detections"]],
                                                       c[..., _IDX["images"]]),
    }
    if not classified:
        return out
    out.update({
        "accuracy_on_found": _accuracy,
        "macro_f1_on_found": lambda c: _macro_f1(c, classes),
        **{f"f1_{SCENE_LABELS[k]}": (lambda c, k=k: _f1(c, k)) for k in classes},
        "tnr": lambda c: _ratio(c[..., _IDX["without_flagged"]], c[..., _IDX["without"]]),
        "fnr": lambda c: _ratio(c[..., _IDX["with_flagged"]], c[..., _IDX["with"]]),
    })
    return out


def _classified(report: dict[str, Any]) -> bool:
    """Whether the run classified its faces (``--classifier none``: its figures are undefined,
    not 0)."""
    return report.get("classifier") is not None or any(f.get("predicted")
                                                       for f in report["per_face"])


def _figures(*reports: dict[str, Any]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The figures of these runs (on the same faces): the classifier's only if every one of
    them classified, F1 for each class in the truth."""
    classified = all(_classified(r) for r in reports)
    classes = sorted({SCENE_LABELS.index(f["label"]) for f in reports[0]["per_face"]})
    return _metrics(classes, classified)


def _per_image_counts(report: dict[str, Any], where: str) -> tuple[list[str], np.ndarray]:
    """Images in report order and their counts ``(images, len(_COUNTS))``."""
    faces = report.get("per_face")
    if faces is None:
        raise InputError(f"{where}: no per-face records (a report of 'maskface eval pipeline' "
                         "run before they were added: run it again)")
    fd = report.get("false_detections_per_image", {})
    images = list(fd) or list(dict.fromkeys(f["image"] for f in faces))
    row = {name: i for i, name in enumerate(images)}
    counts = np.zeros((len(images), len(_COUNTS)), np.float64)
    counts[:, _IDX["images"]] = 1
    for name, n in fd.items():
        counts[row[name], _IDX["false_detections"]] = n
    loose = f"found_iou_{LOOSE_IOU_THRESHOLD}"
    for f in faces:
        c = counts[row[f["image"]]]
        c[_IDX["faces"]] += 1
        c[_IDX["found"]] += f["found"]
        c[_IDX["found_loose"]] += f.get(loose, f["found"])
        small = f["height"] < _SMALL_PX
        c[_IDX["small"]] += small
        c[_IDX["small_found"]] += small and f["found"]
        pred = f.get("predicted")
        flagged = f["found"] and pred is not None and pred != "with_mask"
        if f["label"] == "without_mask":
            c[_IDX["without"]] += 1
            c[_IDX["without_flagged"]] += flagged
        elif f["label"] == "with_mask":
            c[_IDX["with"]] += 1
            c[_IDX["with_flagged"]] += flagged
        if f["found"] and pred in SCENE_LABELS:
            c[_cm_key(f["label"], pred)] += 1
    return images, counts


def _face_keys(report: dict[str, Any]) -> list[tuple]:
    return [(f["image"], f["face"], f["label"]) for f in report["per_face"]]


def _crop_counts(report: dict[str, Any]) -> tuple[list[str], np.ndarray]:
    """The images of a classifier report's crops and their confusion counts, in the layout
    of :func:`_per_image_counts` (crops of one scenes photo share its image)."""
    crops = report["per_crop"]
    images = list(dict.fromkeys(c["image"] for c in crops))
    row = {name: i for i, name in enumerate(images)}
    counts = np.zeros((len(images), len(_COUNTS)), np.float64)
    counts[:, _IDX["images"]] = 1
    for c in crops:
        if c["true"] in SCENE_LABELS and c["predicted"] in SCENE_LABELS:
            counts[row[c["image"]], _cm_key(c["true"], c["predicted"])] += 1
    return images, counts


def _crop_metrics(classes: Sequence[int]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The compared figures of two classifier runs: accuracy, the kiosk view (only
    ``with_mask`` passes), macro F1 and each true class's F1 and recall."""
    w = SCENE_LABELS.index("with_mask")

    def kiosk(c: np.ndarray) -> np.ndarray:
        cm = _confusion(c)
        passed_right = cm[..., w, w]
        refused_right = cm.sum((-2, -1)) - cm[..., w, :].sum(-1) - cm[..., :, w].sum(-1) \
            + cm[..., w, w]
        return _ratio(passed_right + refused_right, cm.sum((-2, -1)))

    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "accuracy": _accuracy, "kiosk_view_accuracy": kiosk,
        "macro_f1": lambda c: _macro_f1(c, classes)}
    for k in classes:
        out[f"f1_{SCENE_LABELS[k]}"] = lambda c, k=k: _f1(c, k)
        out[f"recall_{SCENE_LABELS[k]}"] = lambda c, k=k: _recall(c, k)
    return out


def _run_counts(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]):
    """Both runs' images and per-image counts, and the figures to compare, for two pipeline
    reports or two classifier reports on the same faces."""
    for r, name in zip((a, b), names):
        if "model_labels" in r and "per_crop" not in r:
            raise InputError(f"{name}: no per-crop records (a report of 'maskface eval "
                             "classifier' written before they were added: run it again)")
    kinds = ["per_crop" in r for r in (a, b)]
    if kinds[0] != kinds[1]:
        raise InputError(f"{names[0]} and {names[1]} are not the same kind of report (one "
                         "from 'eval pipeline', one from 'eval classifier')")
    if kinds[0]:
        keys = [[(c["name"], c["true"]) for c in r["per_crop"]] for r in (a, b)]
        if keys[0] != keys[1]:
            raise InputError(f"{names[0]} and {names[1]} were not run on the same crops: a "
                             "paired comparison needs the same ones")
        classes = sorted({SCENE_LABELS.index(c["true"]) for c in a["per_crop"]
                          if c["true"] in SCENE_LABELS})
        return (*_crop_counts(a), *_crop_counts(b), _crop_metrics(classes))
    images, ca = _per_image_counts(a, names[0])
    images_b, cb = _per_image_counts(b, names[1])
    if _face_keys(a) != _face_keys(b) or sorted(images) != sorted(images_b):
        raise InputError(f"{names[0]} and {names[1]} were not run on the same faces (another "
                         "dataset, split or --limit): a paired comparison needs the same ones")
    return images, ca, images_b, cb, _figures(a, b)


def compare_reports(a: dict[str, Any], b: dict[str, Any], resamples: int = 2000,
                    seed: int = 0, names: tuple[str, str] = ("A", "B")) -> dict[str, Any]:
    """Every figure of runs ``a`` and ``b`` (both pipeline reports or both classifier
    reports), the difference ``b - a`` and its 95 % paired bootstrap interval over the images
    (module doc)."""
    if resamples < 100:
        raise InputError(f"--resamples {resamples}: at least 100 are needed for a 95 % interval")
    images, ca, images_b, cb, figures = _run_counts(a, b, names)
    row_b = {name: i for i, name in enumerate(images_b)}
    cb = cb[[row_b[name] for name in images]]
    n = len(images)
    weights = _weights(n, resamples, seed)
    ta, tb = weights @ ca, weights @ cb
    full_a, full_b = ca.sum(0), cb.sum(0)
    rows = {}
    for name, fn in figures.items():
        va, vb = fn(full_a), fn(full_b)
        diff = fn(tb) - fn(ta)
        if np.isnan(va) or np.isnan(vb):
            continue
        diff = diff[~np.isnan(diff)]
        lo, hi = (float(v) for v in np.percentile(diff, [2.5, 97.5]))
        rows[name] = {names[0]: round(float(va), 4), names[1]: round(float(vb), 4),
                      "difference": round(float(vb - va), 4), "ci95": [round(lo, 4), round(hi, 4)],
                      "significant": bool(lo > 0 or hi < 0)}
    unclassified = [] if "per_crop" in a else [
        name for r, name in zip((a, b), names) if not _classified(r)]
    return {"images": n, "faces": len(a.get("per_crop") or a["per_face"]),
            "resamples": resamples, "seed": seed,
            #: runs without a classifier: the classifier's figures are left out (undefined)
            "unclassified": unclassified,
            "runs": {names[0]: _describe(a), names[1]: _describe(b)},
            "method": "paired bootstrap over images: both runs' figures recomputed on the same "
                      "resampled photos; ci95 = 2.5th-97.5th percentile of the difference "
                      f"{names[1]} - {names[0]}; significant = the interval excludes 0",
            "metrics": rows}


def _weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """How often each of ``n`` images is drawn in each resample, ``(resamples, n)``: one matrix
    product with the per-image counts then sums every resample's counts."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def run_intervals(report: dict[str, Any], resamples: int = 2000, seed: int = 0
                  ) -> dict[str, list[float]]:
    """95 % bootstrap interval of each figure of one pipeline run (images resampled, as in
    :func:`compare_reports`): how far the split's luck alone moves it."""
    images, counts = _per_image_counts(report, "report")
    n = len(images)
    if n == 0 or not report["per_face"]:
        return {}
    totals = _weights(n, resamples, seed) @ counts
    out = {}
    for name, fn in _figures(report).items():
        values = fn(totals)
        values = values[~np.isnan(values)]
        if len(values):
            out[name] = [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])]
    return out


def _describe(report: dict[str, Any]) -> dict[str, Any]:
    keys = (("model", "scenes", "split", "crop", "folder", "file_list") if "per_crop" in report
            else ("scenes", "split", "profile", "classifier", "detector"))
    return {k: report.get(k) for k in keys}

"""Does the synthetic data look like masked faces to the project's own models?

For the correctly worn masks of a synthesis run: the default detector must still find the face
(a detection overlapping the original face box at IoU >= 0.5), and the mask classifier must call
it ``with_mask``. Incorrectly worn masks are reported per wear so the three-class classifier's
view of them is visible too. Writes a JSON report and a contact sheet of the failures.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from maskface.errors import InputError
from maskface.geometry import iou_matrix
from maskface.io import load_image
from maskface.jsonfile import write_json
from maskface.synth.batch import MANIFEST, read_manifest
from maskface.synth.preview import write_contact_sheet

MATCH_IOU = 0.5


def check_synth(out_dir: str | Path, limit: int | None = 1000, detector: str = "yunet",
                classifier: str = "mask_classifier", exclude_identities: set[str] | None = None,
                input_size: int | None = None,
                progress: Callable[[Iterator, int], Iterator] | None = None) -> dict:
    """Detection and classifier rates over (at most ``limit``, evenly spread) synthesised
    images of ``out_dir``; writes ``synth_check.json`` and ``synth_check_failures.png``.

    ``exclude_identities`` drops images of those identities first, e.g. the people whose masked
    photos trained the classifier. ``input_size`` overrides the detector's default input size.
    The unmasked source photos are run through the same detector, so the report shows what the
    mask costs the detector and not what it misses anyway."""
    from maskface.classify import MaskClassifier
    from maskface.detect import create_detector

    out_dir = Path(out_dir)
    rows = read_manifest(out_dir / MANIFEST)
    excluded = 0
    if exclude_identities:
        kept = [r for r in rows if r.identity not in exclude_identities]
        excluded, rows = len(rows) - len(kept), kept
    if not rows:
        raise InputError(f"{out_dir}: no images left to check")
    if limit is not None and limit < len(rows):
        idx = np.linspace(0, len(rows) - 1, limit).round().astype(int)
        rows = [rows[i] for i in idx]
    det = create_detector(detector, **({"input_size": input_size} if input_size else {}))
    clf = MaskClassifier(classifier)
    wrap = progress or (lambda it, total: it)
    per_wear: dict[str, Counter] = {}
    failures: list[tuple[str, str, str]] = []
    t0 = time.perf_counter()
    for row in wrap(iter(rows), len(rows)):
        image = load_image(out_dir / row.output)
        truth = np.array([[row.x1, row.y1, row.x2, row.y2]])
        d = det.detect(image)
        c = per_wear.setdefault(row.wear, Counter())
        c["n"] += 1
        c["source_detected"] += _matches(det.detect(load_image(row.source)), truth) is not None
        matched = _matches(d, truth)
        c["detected"] += matched is not None
        # Classify the detected box; a missed face is classified at its original box so the
        # classifier figure does not hide behind the detector's.
        box = matched if matched is not None else truth[0]
        pred = clf.classify(image, box[None])[0]
        c[f"label_{pred.label}"] += 1
        if matched is not None:
            c[f"detected_label_{pred.label}"] += 1
        if row.worn_correctly and (matched is None or pred.label != "with_mask"):
            why = "missed" if matched is None else f"{pred.label} {pred.probability:.2f}"
            failures.append((row.source, str(out_dir / row.output), f"{row.style}: {why}"))
    seconds = time.perf_counter() - t0
    report = _report(out_dir, per_wear, len(rows), detector, classifier, clf.labels, seconds)
    report["detector_input_size"] = getattr(det, "input_size", None)
    report["excluded_images_of_excluded_identities"] = excluded
    path = out_dir / "synth_check.json"
    write_json(path, report, indent=2)
    if failures:
        write_contact_sheet(out_dir / "synth_check_failures.png", failures[:48], columns=6)
    report["report_path"] = str(path)
    return report


def _matches(det, truth: np.ndarray) -> np.ndarray | None:
    """The detected box matching the face box ``truth`` (1, 4) at IoU >= MATCH_IOU, if any."""
    if len(det) == 0:
        return None
    ious = iou_matrix(truth, det.boxes)[0]
    return det.boxes[int(np.argmax(ious))] if ious.max() >= MATCH_IOU else None


def _report(out_dir: Path, per_wear: dict[str, Counter], n: int, detector: str,
            classifier: str, labels: tuple[str, ...], seconds: float) -> dict:
    wears = {}
    for wear, c in sorted(per_wear.items()):
        k = c["n"]
        entry = {
            "images": k,
            "detection_rate": round(c["detected"] / k, 4),
            "source_detection_rate": round(c["source_detected"] / k, 4),
            "label_rates": {lab: round(c[f"label_{lab}"] / k, 4) for lab in labels},
        }
        if c["detected"]:
            entry["label_rates_among_detected"] = {
                lab: round(c[f"detected_label_{lab}"] / c["detected"], 4) for lab in labels}
        wears[wear] = entry
    correct = per_wear.get("correct", Counter())
    k = max(correct["n"], 1)
    summary = {
        "correctly_worn_images": correct["n"],
        "detection_rate": round(correct["detected"] / k, 4),
        "source_detection_rate": round(correct["source_detected"] / k, 4),
        "with_mask_rate": round(correct["label_with_mask"] / k, 4),
        "detected_and_with_mask_rate": round(correct["detected_label_with_mask"] / k, 4),
    }
    return {"synth_dir": str(out_dir), "images_checked": n, "detector": detector,
            "detector_match_iou": MATCH_IOU, "classifier": classifier,
            "classifier_labels": list(labels), "summary": summary, "by_wear": wears,
            "seconds": round(seconds, 1)}


"""Choose the three-way rule's threshold and override on validation data only.

Runs a shared graph (``maskface train classifier --init mask_classifier --frozen-blocks K``
writes ``shared.onnx``: two-class ``probs`` and three-class ``branch_probs``) on

* the ilc2021 **val** split's true boxes, cut with the inference crop, and
* the real-crop val files of a run's ``splits/val.txt`` (source ``real``),

sweeps threshold x override and prints and writes (JSON) the figures the choice is made on:
three-class macro F1 and ``mask_incorrect`` precision/recall on ilc2021 val, and how many
masked real-val photos are called ``mask_incorrect``. Criterion (docs/classifier.md): the
highest macro F1 with ``mask_incorrect`` recall >= 0.75 at precision >= 0.70, ties broken by
fewer masked real photos called incorrect, then the lower override, then the higher
threshold. Test splits are never read.

    python scripts/select_three_way.py RUN/shared.onnx --splits RUN/splits/val.txt \\
        --scenes ../shared/data/scenes/ilc2021 --out RUN/rule_sweep.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from maskface.classify import MaskClassifier
from maskface.classify.three_way import THREE_WAY_LABELS, three_way_probs
from maskface.eval.classifier import list_crops, scene_crops
from maskface.eval.metrics import classification_report
from maskface.train.classifier import onnx_outputs

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
OVERRIDES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="shared graph with probs and branch_probs")
    ap.add_argument("--splits", type=Path, required=True, help="a run's splits/val.txt")
    ap.add_argument("--scenes", type=Path, required=True, help="ilc2021 (fixed splits)")
    ap.add_argument("--out", type=Path, required=True, help="JSON sweep to write")
    args = ap.parse_args()
    if args.splits.name != "val.txt":
        ap.error("--splits must be a validation list (val.txt): the choice never sees test")
    two = MaskClassifier("mask_classifier")  # the inference crop and input size
    ilc = scene_crops(args.scenes, two, progress=False, split="val")
    real = list_crops(args.splits, two.input_size, progress=False)
    keep = [k for k, s in enumerate(real.sources) if s == "real"]
    real_crops = real.crops[keep]
    real_labels = np.array([real.labels[k] for k in keep])
    p_ilc = onnx_outputs(args.model, ilc.crops)
    p_real = onnx_outputs(args.model, real_crops)
    y_ilc = np.array([THREE_WAY_LABELS.index(lab) for lab in ilc.labels])
    rows = []
    for override in OVERRIDES:
        for threshold in THRESHOLDS:
            rep = classification_report(three_way_probs(*p_ilc, threshold, override), y_ilc,
                                        THREE_WAY_LABELS)
            pred_real = three_way_probs(*p_real, threshold, override).argmax(1)
            inc = rep["per_class"]["mask_incorrect"]
            rows.append({
                "threshold": threshold, "override": override,
                "ilc_val_accuracy": round(rep["accuracy"], 4),
                "ilc_val_macro_f1": round(rep["macro_f1"], 4),
                "ilc_val_incorrect_precision": round(inc["precision"], 3),
                "ilc_val_incorrect_recall": round(inc["recall"], 3),
                "ilc_val_with_f1": round(rep["per_class"]["with_mask"]["f1"], 3),
                "ilc_val_without_f1": round(rep["per_class"]["without_mask"]["f1"], 3),
                "real_val_with_mask_called_incorrect": int(
                    ((real_labels == "with_mask") & (pred_real == 2)).sum()),
                "real_val_masked_view_accuracy": round(float(
                    ((pred_real != 1) == (real_labels == "with_mask")).mean()), 4),
            })
    ok = [r for r in rows if r["ilc_val_incorrect_recall"] >= 0.75
          and r["ilc_val_incorrect_precision"] >= 0.70]
    best = max(ok, key=lambda r: (r["ilc_val_macro_f1"],
                                  -r["real_val_with_mask_called_incorrect"], -r["override"],
                                  r["threshold"])) if ok else None
    for r in rows:
        mark = "*" if r is best else ("+" if r in ok else " ")
        print(f"{mark} threshold {r['threshold']} override {r['override']}: macro F1 "
              f"{r['ilc_val_macro_f1']:.4f}, incorrect P/R {r['ilc_val_incorrect_precision']:.3f}"
              f"/{r['ilc_val_incorrect_recall']:.3f}, real val masked called incorrect "
              f"{r['real_val_with_mask_called_incorrect']}")
    out = {"model": str(args.model), "ilc2021_val_faces": len(y_ilc),
           "real_val_photos": len(real_labels),
           "criterion": "ilc2021 val macro F1 of the three classes, keeping mask_incorrect "
                        "recall >= 0.75 at precision >= 0.70; ties: fewer masked real-val "
                        "photos called mask_incorrect, then the lower override, then the higher "
                        "threshold",
           "chosen": best, "sweep": rows}
    args.out.write_text(json.dumps(out, indent=1))
    print(f"chosen: {best and (best['threshold'], best['override'])}; sweep: {args.out}")


if __name__ == "__main__":
    main()

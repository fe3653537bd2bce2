"""Choose the three-way rule's threshold and override on validation data only.

A shared graph (``maskface train classifier --init mask_classifier --frozen-blocks K``: the
two-class ``probs`` and the three-class ``branch_probs``) is run on

* a scenes dataset's **val** split's true boxes (ilc2021), cut with the inference crop, and
* the real-crop val files of the run's ``splits/val.txt`` (source ``real``),

and the rule (:func:`maskface.classify.three_way.three_way_probs`) is swept over threshold x
override. Criterion: the highest three-class macro F1 on the scenes' val faces with
``mask_incorrect`` recall >= 0.75 at precision >= 0.70; ties broken by fewer masked real-val
photos called ``mask_incorrect``, then the lower override, then the higher threshold. Test
splits are never read. :func:`store_rule` writes the choice into the graph's metadata, so
:class:`maskface.classify.MaskClassifier` applies it to that file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from maskface.classify.three_way import RULE_KEY, THREE_WAY_LABELS, three_way_probs

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
OVERRIDES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
CRITERION = ("ilc2021 val macro F1 of the three classes, keeping mask_incorrect recall >= 0.75 "
             "at precision >= 0.70; ties: fewer masked real-val photos called mask_incorrect, "
             "then the lower override, then the higher threshold")


def sweep(p_scenes: list[np.ndarray], y_scenes: np.ndarray, p_real: list[np.ndarray],
          real_labels: np.ndarray) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Every (threshold, override) scored on the two validation sets, and the chosen row
    (``None`` when none keeps ``mask_incorrect`` recall >= 0.75 at precision >= 0.70).
    ``p_*`` are the graph's two outputs; ``y_scenes`` indexes :data:`THREE_WAY_LABELS`."""
    from maskface.eval.metrics import classification_report

    rows = []
    for override in OVERRIDES:
        for threshold in THRESHOLDS:
            rep = classification_report(three_way_probs(*p_scenes, threshold, override),
                                        y_scenes, THREE_WAY_LABELS)
            pred_real = (three_way_probs(*p_real, threshold, override).argmax(1)
                         if len(real_labels) else np.zeros(0, np.int64))
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
                    ((pred_real != 1) == (real_labels == "with_mask")).mean()), 4)
                if len(real_labels) else None,
            })
    ok = [r for r in rows if r["ilc_val_incorrect_recall"] >= 0.75
          and r["ilc_val_incorrect_precision"] >= 0.70]
    return rows, (max(ok, key=_rank) if ok else None)


def _rank(row: dict[str, Any]) -> tuple:
    return (row["ilc_val_macro_f1"], -row["real_val_with_mask_called_incorrect"],
            -row["override"], row["threshold"])


def fallback(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The row to store when none meets the constraint: the best macro F1 with the same
    tie-breaks, so the graph still works as a three-way stage (its card says the constraint
    was missed)."""
    return max(rows, key=_rank)


def select_rule(model: str | Path, val_list: str | Path, scenes: str | Path,
                crop_model: str | Path = "mask_classifier", progress: bool = False
                ) -> dict[str, Any]:
    """Run the shared graph ``model`` on the validation data and sweep the rule (module doc).
    ``crop_model`` gives the inference crop and size (the graph's init model)."""
    from maskface.classify import MaskClassifier
    from maskface.eval.classifier import crops_from_files, scene_crops
    from maskface.train.classifier import onnx_outputs
    from maskface.train.data import read_split_list

    if Path(val_list).name != "val.txt":
        from maskface.errors import InputError

        raise InputError(f"{val_list}: the rule is chosen on a validation list (val.txt) only")
    cropper = MaskClassifier(crop_model)
    scenes_val = scene_crops(scenes, cropper, progress=progress, split="val")
    real = crops_from_files([(s.path, s.label, s.source) for s in read_split_list(val_list)
                             if s.source == "real"], cropper.input_size, progress)
    real_labels = np.array(real.labels)
    y = np.array([THREE_WAY_LABELS.index(lab) for lab in scenes_val.labels])
    rows, best = sweep(onnx_outputs(Path(model), scenes_val.crops), y,
                       onnx_outputs(Path(model), real.crops) if len(real_labels) else [],
                       real_labels)
    return {"model": str(model), "scenes": str(scenes), "ilc2021_val_faces": len(y),
            "real_val_photos": len(real_labels), "criterion": CRITERION,
            "criterion_met": best is not None, "chosen": best or fallback(rows),
            "sweep": rows}


def clear_rule(proto) -> None:
    """Remove any rule from a loaded ONNX graph's metadata."""
    for prop in [p for p in proto.metadata_props if p.key == RULE_KEY]:
        proto.metadata_props.remove(prop)


def set_rule(proto, threshold: float, override: float) -> None:
    """Put the rule into a loaded ONNX graph's metadata (``three_way_rule``), replacing any."""
    clear_rule(proto)
    proto.metadata_props.add(key=RULE_KEY, value=json.dumps(
        {"threshold": threshold, "override": override}))


def store_rule(path: str | Path, threshold: float, override: float) -> None:
    """Write the rule into the ONNX file's metadata (:func:`set_rule`)."""
    import onnx

    proto = onnx.load(str(path))
    set_rule(proto, threshold, override)
    onnx.save(proto, str(path))

"""Quantise a maskface mask classifier to int8 (static, QDQ, per-channel weights) for CPU.

Calibration uses face crops prepared exactly as at inference (``whole_image_crop``); the ONNX
metadata (labels, input size, crop scale) is carried over (``maskface.train.quantize``). Check
that accuracy holds with ``maskface eval classifier --model OUT.onnx`` before using it
(docs/performance.md).

``--only-branch`` quantises only the three-class branch of a shared three-way graph (as
``maskface train classifier --int8-branch`` does inside a training run): the two-class output
stays bit-identical, and the three-way rule (``COMPOSITES`` for a registered name) is stored in
the file's metadata so ``--model OUT.onnx`` is a whole three-way stage. The shipped default,
``mask_classifier_3way_int8``, is the second command's output, byte for byte (its card).

    .venv/bin/python scripts/quantize_classifier.py MODEL.onnx OUT.onnx CALIB_DIR [--n 256]
    .venv/bin/python scripts/quantize_classifier.py mask_classifier_3way OUT.onnx \
        ../shared/data/mask-crops/synthetic/train --only-branch --n 400
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx

from maskface.classify.three_way import COMPOSITES
from maskface.io.sources import image_files
from maskface.models import model_bytes
from maskface.train.quantize import calibration_crops, quantize_branch, quantize_whole
from maskface.train.three_way_rule import set_rule


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="ONNX file or registered name")
    ap.add_argument("out", type=Path)
    ap.add_argument("calib", type=Path, help="folder of face crops (searched recursively)")
    ap.add_argument("--n", type=int, default=256, help="calibration crops")
    ap.add_argument("--only-branch", action="store_true",
                    help="quantise only the three-class branch of a shared graph")
    args = ap.parse_args()
    registered = not args.model.endswith(".onnx")
    model = onnx.load_from_string(model_bytes(args.model)) if registered else \
        onnx.load(args.model)
    size = int({p.key: p.value for p in model.metadata_props}["input_size"])
    crops = calibration_crops(image_files(args.calib), size, args.n)
    if args.only_branch:
        if registered and args.model in COMPOSITES:
            # replaces the rule a graph written by a training run already carries
            set_rule(model, *COMPOSITES[args.model][1:])
        quantize_branch(model, args.out, crops)
    else:
        quantize_whole(model, args.out, crops)
    print(f"{args.out}: {args.out.stat().st_size} bytes (from {model.ByteSize()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

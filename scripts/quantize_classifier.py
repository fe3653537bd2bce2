"""Quantise a maskface mask classifier to int8 (static, QDQ, per-channel weights) for CPU.

Calibration uses real face crops prepared exactly as at inference (``whole_image_crop``); the
ONNX metadata (labels, input size, crop scale) is carried over. Check that accuracy holds with
``maskface eval classifier --model OUT.onnx`` before using it (docs/performance.md).

``--only-branch`` quantises only the three-class branch of a shared three-way graph
(``maskface train classifier --init … --frozen-blocks K``): the branch reads its own copy of the
shared trunk's output, so the two-class output stays bit-identical, and the three-way rule
(``COMPOSITES`` for a registered name) is stored in the file's metadata so ``--model OUT.onnx``
is a whole three-way stage (docs/classifier.md, "int8 three-class branch": measured, not shipped).

    .venv/bin/python scripts/quantize_classifier.py MODEL.onnx OUT.onnx CALIB_DIR [--n 256]
    .venv/bin/python scripts/quantize_classifier.py mask_classifier_3way OUT.onnx \
        ../shared/data/mask-crops/synthetic/train --only-branch --n 400
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from maskface.classify.crop import whole_image_crop
from maskface.classify.three_way import COMPOSITES, RULE_KEY
from maskface.io import load_image
from maskface.io.image import is_image_path
from maskface.models import model_bytes

#: node-name prefixes of a shared graph's three-class branch (maskface.train's export)
BRANCH_PREFIXES = ("/tails.1/", "/heads.1/")


def split_branch_input(model: onnx.ModelProto) -> list[str]:
    """Give the branch its own Identity copy of each trunk tensor it reads (the quantiser
    would otherwise route the shared tensor through Q/DQ for the two-class path too); return
    the branch's node names to quantise."""
    branch = [n for n in model.graph.node if n.name.startswith(BRANCH_PREFIXES)]
    if not branch:
        raise SystemExit("no three-class branch in this graph (expected a shared graph)")
    trunk_out = {o for n in model.graph.node if n.name.startswith("/trunk/") for o in n.output}
    shared = {i for n in branch for i in n.input if i in trunk_out}
    nodes = list(model.graph.node)
    del model.graph.node[:]
    for n in nodes:
        if n.name.startswith(BRANCH_PREFIXES):
            for k, name in enumerate(n.input):
                if name in shared:
                    n.input[k] = name + "__branch"
        model.graph.node.append(n)
        for o in n.output:
            if o in shared:  # right after its producer: the graph stays sorted
                model.graph.node.append(helper.make_node(
                    "Identity", [o], [o + "__branch"], name=f"/tails.1/input_copy_{len(nodes)}"))
    onnx.checker.check_model(model)
    return [n.name for n in branch]


class Crops(CalibrationDataReader):
    def __init__(self, name: str, crops: np.ndarray, batch: int = 16):
        x = crops.astype(np.float32).transpose(0, 3, 1, 2)
        self._it = iter([{name: x[i : i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self._it, None)


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
    meta = {p.key: p.value for p in model.metadata_props}
    size = int(meta["input_size"])
    files = sorted(p for p in args.calib.rglob("*") if p.is_file() and is_image_path(p))
    random.Random(0).shuffle(files)
    crops = np.stack([whole_image_crop(load_image(p), size) for p in files[: args.n]])
    with tempfile.TemporaryDirectory() as tmp:
        src, kw = Path(tmp) / "src.onnx", {}
        if args.only_branch:
            kw = {"nodes_to_quantize": split_branch_input(model),
                  "calibrate_method": CalibrationMethod.Percentile}
            onnx.save(model, str(src))  # no pre-processing: it would rewrite the float path
            how = "int8 static QDQ per-channel, three-class branch only (percentile calibration)"
            if registered and args.model in COMPOSITES:
                rule = COMPOSITES[args.model]
                meta[RULE_KEY] = json.dumps({"threshold": rule.threshold,
                                             "override": rule.override})
        else:
            onnx.save(model, str(Path(tmp) / "in.onnx"))
            quant_pre_process(str(Path(tmp) / "in.onnx"), str(src), skip_symbolic_shape=True)
            how = "int8 static QDQ per-channel"
        quantize_static(str(src), str(args.out), Crops(model.graph.input[0].name, crops),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, **kw)
    q = onnx.load(str(args.out))
    del q.metadata_props[:]
    for k, v in {**meta, "quantized": how}.items():
        entry = q.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(q, str(args.out))
    print(f"{args.out}: {args.out.stat().st_size} bytes (from {model.ByteSize()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

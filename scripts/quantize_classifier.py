"""Quantise a maskface mask classifier to int8 (static, QDQ, per-channel weights) for CPU.

Calibration uses real face crops prepared exactly as at inference (``whole_image_crop``); the
ONNX metadata (labels, input size, crop scale) is carried over. Check that accuracy holds with
``maskface eval classifier --model OUT.onnx`` before using it (docs/performance.md).

    .venv/bin/python scripts/quantize_classifier.py MODEL.onnx OUT.onnx CALIB_DIR [--n 256]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from maskface.classify.crop import whole_image_crop
from maskface.io import load_image
from maskface.io.image import is_image_path


class Crops(CalibrationDataReader):
    def __init__(self, name: str, crops: np.ndarray, batch: int = 16):
        x = crops.astype(np.float32).transpose(0, 3, 1, 2)
        self._it = iter([{name: x[i : i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self._it, None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("calib", type=Path, help="folder of face crops (searched recursively)")
    ap.add_argument("--n", type=int, default=256, help="calibration crops")
    args = ap.parse_args()
    model = onnx.load(str(args.model))
    meta = {p.key: p.value for p in model.metadata_props}
    size = int(meta["input_size"])
    files = sorted(p for p in args.calib.rglob("*") if p.is_file() and is_image_path(p))
    random.Random(0).shuffle(files)
    crops = np.stack([whole_image_crop(load_image(p), size) for p in files[: args.n]])
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(args.model), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(args.out), Crops(model.graph.input[0].name, crops),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    q = onnx.load(str(args.out))
    del q.metadata_props[:]
    for k, v in {**meta, "quantized": "int8 static QDQ per-channel"}.items():
        entry = q.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(q, str(args.out))
    print(f"{args.out}: {args.out.stat().st_size} bytes (from {args.model.stat().st_size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

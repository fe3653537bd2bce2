"""Make ``src/maskface/weights/yunet_fp32.onnx`` from the registry's YuNet (int8 block-quantised).

onnxruntime cannot run OpenCV Zoo's block-quantised YuNet (its per-tensor bias DequantizeLinear
nodes carry a block size), and OpenCV's own DNN runs it ~2.5x slower than onnxruntime runs the
same network in float32. This folds every constant DequantizeLinear into a float32 weight
(the exact values OpenCV computes), and frees the input's height and width (the graph's
reshapes already use -1). Needs the ``onnx`` package (the ``train`` extra).

    .venv/bin/python scripts/export_yunet_onnx.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from maskface.models import model_path, sha256_file

OUT = Path(__file__).resolve().parents[1] / "src/maskface/weights/yunet_fp32.onnx"


def _dequantize(x: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int,
                block: int) -> np.ndarray:
    x, scale, zero = (a.astype(np.float32) for a in (x, scale, zero))
    if scale.ndim == 0:
        return (x - zero) * scale
    ax = axis % x.ndim
    if block:  # blocked: one scale per `block` consecutive elements along `ax`
        scale = np.repeat(scale, block, axis=ax).take(range(x.shape[ax]), axis=ax)
        zero = np.repeat(zero, block, axis=ax).take(range(x.shape[ax]), axis=ax)
        return (x - zero) * scale
    shape = [1] * x.ndim
    shape[ax] = -1
    return (x - zero.reshape(shape)) * scale.reshape(shape)


def fold(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    values = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    values.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t)
                   for n in g.node if n.op_type == "Constant"})
    kept, folded = [], []
    for node in g.node:
        ins = [values.get(n) for n in node.input]
        if node.op_type == "DequantizeLinear" and all(v is not None for v in ins):
            attrs = {a.name: a.i for a in node.attribute}
            zero = ins[2] if len(ins) > 2 else np.zeros_like(ins[1])
            y = _dequantize(ins[0], ins[1], zero, attrs.get("axis", 1),
                            attrs.get("block_size", 0))
            values[node.output[0]] = y
            folded.append(numpy_helper.from_array(y, node.output[0]))
        else:
            kept.append(node)
    del g.node[:]
    g.node.extend(kept)
    g.initializer.extend(folded)
    used = {i for n in g.node for i in n.input}
    alive = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(alive)
    dims = g.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for out in g.output:
        out.type.tensor_type.shape.dim[1].dim_param = "anchors"
    del g.value_info[:]
    onnx.checker.check_model(model)
    return model


def main() -> int:
    model = fold(onnx.load(str(model_path("yunet"))))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(OUT))
    print(f"{OUT} ({OUT.stat().st_size} bytes) sha256 {sha256_file(OUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""int8 quantisation of mask classifiers (static QDQ, per-channel int8 weights, uint8
activations) for CPU inference on onnxruntime.

:func:`quantize_branch` quantises only the three-class branch of a shared three-way graph
(``maskface train classifier --init … --frozen-blocks K``): the branch reads its own copy of
the shared trunk's output, so the two-class output stays bit-identical. That is how the
default ``mask_classifier_3way_int8`` is made. Whole-graph int8 (:func:`quantize_whole`) lost
accuracy on validation for both shipped models (docs/performance.md, docs/classifier.md).

Calibration crops are face crops prepared exactly as at inference (``whole_image_crop``),
drawn by :func:`calibration_crops` (sorted, shuffled with a seed, the first ``n``): the same
files give the same file, byte for byte.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

#: node-name prefixes of a shared graph's three-class branch (this package's export)
BRANCH_PREFIXES = ("/tails.1/", "/heads.1/")
#: calibration crops for an int8 branch
CALIBRATION_CROPS = 400
BRANCH_HOW = "int8 static QDQ per-channel, three-class branch only (percentile calibration)"


def calibration_crops(paths: Sequence[str | Path], size: int, n: int = CALIBRATION_CROPS,
                      seed: int = 0, load: Callable[[str], np.ndarray] | None = None
                      ) -> np.ndarray:
    """``(min(n, len(paths)), size, size, 3)`` inference crops of ``paths`` (sorted, shuffled
    with ``seed``, the first ``n``); ``load`` maps a path to a BGR image (default: the
    package's image loader)."""
    from maskface.classify.crop import whole_image_crop

    if load is None:
        from maskface.io import load_image as load
    chosen = sorted(str(p) for p in paths)
    if not chosen:
        raise ValueError("no calibration images")
    random.Random(seed).shuffle(chosen)
    return np.stack([whole_image_crop(load(p), size) for p in chosen[:n]])


def split_branch_input(model) -> list[str]:
    """Give the branch its own Identity copy of each trunk tensor it reads (the quantiser
    would otherwise route the shared tensor through Q/DQ for the two-class path too); return
    the branch's node names to quantise. ``model`` is an ``onnx.ModelProto``, edited in place."""
    import onnx
    from onnx import helper

    branch = [n for n in model.graph.node if n.name.startswith(BRANCH_PREFIXES)]
    if not branch:
        raise ValueError("no three-class branch in this graph (expected a shared graph)")
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


def _reader(input_name: str, crops: np.ndarray, batch: int = 16):
    from onnxruntime.quantization import CalibrationDataReader

    class Crops(CalibrationDataReader):
        def __init__(self):
            x = crops.astype(np.float32).transpose(0, 3, 1, 2)
            self._it = iter([{input_name: x[i : i + batch]} for i in range(0, len(x), batch)])

        def get_next(self):
            return next(self._it, None)

    return Crops()


def _quantize(model, out: Path, crops: np.ndarray, how: str, branch_only: bool) -> Path:
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    meta = {p.key: p.value for p in model.metadata_props}
    with tempfile.TemporaryDirectory() as tmp:
        src, kw = Path(tmp) / "src.onnx", {}
        if branch_only:
            kw = {"nodes_to_quantize": split_branch_input(model),
                  "calibrate_method": CalibrationMethod.Percentile}
            onnx.save(model, str(src))  # no pre-processing: it would rewrite the float path
        else:
            onnx.save(model, str(Path(tmp) / "in.onnx"))
            quant_pre_process(str(Path(tmp) / "in.onnx"), str(src), skip_symbolic_shape=True)
        quantize_static(str(src), str(out), _reader(model.graph.input[0].name, crops),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, **kw)
    q = onnx.load(str(out))
    del q.metadata_props[:]
    for k, v in {**meta, "quantized": how}.items():
        q.metadata_props.add(key=k, value=v)
    onnx.save(q, str(out))
    return out


def quantize_branch(model, out: str | Path, crops: np.ndarray) -> Path:
    """Write ``out``: the shared graph ``model`` (``onnx.ModelProto``) with its three-class
    branch in int8 and its two-class path untouched; metadata (labels, size, crop, a stored
    three-way rule) carried over."""
    return _quantize(model, Path(out), crops, BRANCH_HOW, branch_only=True)


def quantize_whole(model, out: str | Path, crops: np.ndarray) -> Path:
    """Write ``out``: the whole classifier ``model`` in int8 (pre-processed first)."""
    return _quantize(model, Path(out), crops, "int8 static QDQ per-channel", branch_only=False)

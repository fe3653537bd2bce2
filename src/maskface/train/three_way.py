"""Build the three-way default mask model: both shipped classifiers and the rule of
:mod:`maskface.classify.three_way` in one ONNX graph (one session run per batch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from maskface.classify.three_way import THREE_WAY_LABELS, three_way_probs


def build_three_way(two_class: str | Path, three_class: str | Path, threshold: float,
                    override: float, out: str | Path) -> dict:
    """Write the fused ONNX model to ``out`` and return its description (for the card).

    Both inputs must be maskface classifiers with the same input size and crop scale; the fused
    output is compared with :func:`three_way_probs` on random crops (max abs diff < 1e-5)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, compose, helper

    from maskface.models import model_path

    def load(m):
        p = Path(m) if str(m).endswith(".onnx") else model_path(str(m))
        return onnx.load(str(p)), p

    (a, pa), (b, pb) = load(two_class), load(three_class)
    meta_a = {p.key: p.value for p in a.metadata_props}
    meta_b = {p.key: p.value for p in b.metadata_props}
    if json.loads(meta_a["labels"]) != ["with_mask", "without_mask"] or \
            json.loads(meta_b["labels"]) != list(THREE_WAY_LABELS):
        raise ValueError("need a (with_mask, without_mask) and a "
                         "(with_mask, without_mask, mask_incorrect) classifier")
    for key in ("input_size", "crop_scale"):
        if meta_a[key] != meta_b[key]:
            raise ValueError(f"the two classifiers differ in {key}: {meta_a[key]} vs {meta_b[key]}")
    if override < 0.5:
        raise ValueError("override must be at least 0.5")
    a = compose.add_prefix(a, "two/")
    b = compose.add_prefix(b, "three/")
    inp = a.graph.input[0].name[len("two/"):]
    nodes = []
    for g, pre in ((a.graph, "two/"), (b.graph, "three/")):
        for n in g.node:
            n.input[:] = [inp if x == pre + inp else x for x in n.input]
            nodes.append(n)
    p2, p3 = a.graph.output[0].name, b.graph.output[0].name

    def c(name, v):
        return helper.make_tensor(name, TensorProto.FLOAT, [], [v])

    consts = [c("k_eps", 1e-6), c("k_half", 0.5), c("k_one", 1.0), c("k_two", 2.0),
              c("k_capm", 0.4999), c("k_capd", 0.999), c("k_t", threshold), c("k_u", override)]
    i64 = [helper.make_tensor(n, TensorProto.INT64, [1], [v])
           for n, v in (("i0", 0), ("i1", 1), ("i2", 2), ("i3", 3))]
    N = helper.make_node
    nodes += [
        N("Slice", [p2, "i0", "i1", "i1"], ["m0"]),            # P2(with), (N,1)
        N("Slice", [p3, "i0", "i1", "i1"], ["qw"]),
        N("Slice", [p3, "i2", "i3", "i1"], ["qi"]),
        N("Add", ["qi", "qw"], ["qs"]), N("Add", ["qs", "k_eps"], ["qse"]),
        N("Div", ["qi", "qse"], ["r0"]),
        N("Greater", ["qi", "k_u"], ["ov"]),
        N("Max", ["m0", "qi"], ["mq"]), N("Where", ["ov", "mq", "m0"], ["m"]),
        N("Where", ["ov", "k_one", "r0"], ["r"]),
        N("Greater", ["r", "k_t"], ["inc"]),
        N("Sub", ["k_one", "r"], ["r1"]), N("Where", ["inc", "r", "r1"], ["share"]),
        N("Mul", ["m", "k_capm"], ["capa"]),
        N("Mul", ["m", "k_two"], ["m2"]), N("Sub", ["m2", "k_one"], ["m21"]),
        N("Mul", ["m21", "k_capd"], ["capb"]), N("Min", ["capa", "capb"], ["capab"]),
        N("Greater", ["m", "k_half"], ["masked"]), N("Where", ["masked", "capab", "m"], ["cap"]),
        N("Sub", ["k_one", "share"], ["s1"]), N("Mul", ["m", "s1"], ["ms1"]),
        N("Min", ["ms1", "cap"], ["other"]), N("Sub", ["m", "other"], ["chosen"]),
        N("Where", ["inc", "other", "chosen"], ["pw"]), N("Sub", ["k_one", "m"], ["pwo"]),
        N("Where", ["inc", "chosen", "other"], ["pi"]),
        N("Concat", ["pw", "pwo", "pi"], ["probs"], axis=1),
    ]
    out_vi = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3])
    graph = helper.make_graph(
        nodes, "maskface_three_way", [a.graph.input[0]], [out_vi],
        list(a.graph.initializer) + list(b.graph.initializer) + consts + i64)
    graph.input[0].name = inp
    model = helper.make_model(graph, opset_imports=list(a.opset_import))
    model.ir_version = a.ir_version
    meta = {"labels": json.dumps(list(THREE_WAY_LABELS)), "input_size": meta_a["input_size"],
            "crop_scale": meta_a["crop_scale"], "input": meta_a.get("input", ""),
            "output": "probabilities (N,3); argmax is the three-way rule",
            "architecture": "mobilenet_v2 x2 + three-way rule",
            "rule": json.dumps({"threshold": threshold, "override": override})}
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    # Check the graph against the numpy reference and the two models run apart.
    size = int(meta_a["input_size"])
    x = np.random.default_rng(0).uniform(0, 255, (16, 3, size, size)).astype(np.float32)
    run = {p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
           for p in (pa, pb, out)}
    outs = {p: s.run(None, {s.get_inputs()[0].name: x})[0] for p, s in run.items()}
    ref = three_way_probs(outs[pa], outs[pb], threshold, override)
    diff = float(np.abs(outs[out] - ref).max())
    if diff > 1e-5:
        raise RuntimeError(f"fused graph differs from the reference rule by {diff}")
    return {"file": out.name, "two_class": str(two_class), "three_class": str(three_class),
            "threshold": threshold, "override": override, "max_abs_diff_vs_reference": diff}

"""Convert Intel's ``face-reidentification-retail-0095`` OpenVINO IR (FP16, 2023.0) to the
float32 ONNX shipped as ``src/maskface/weights/face_reid_0095.onnx``.

A short hand-written IR -> ONNX converter (no OpenVINO, no ``openvino2onnx``): the IR holds
only Parameter, Const (f16) + Convert (decompression to f32), Convolution, GroupConvolution,
Add, Multiply, PReLU (one scalar slope each: written as LeakyRelu, which onnxruntime runs ~6x
faster than PRelu here), Sigmoid, AvgPool (global, in squeeze-excitation blocks) and Result.
Every op maps one to one; the folded preprocessing (BGR 0..255 in, channel
swap and /255 inside the first layers) stays in the graph. The batch is made dynamic and the
``(N, 256, 1, 1)`` output flattened to ``(N, 256)`` (not L2-normalised; cosine compares it).

The IR files' SHA-256 are checked against the staged digests before anything is read.
Needs the ``onnx`` package (the ``train`` extra).

    .venv/bin/python scripts/convert_reid_ir.py ../shared/models/face-reidentification-retail-0095
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from maskface.models import sha256_file

NAME = "face-reidentification-retail-0095"
#: the staged FP16 IR (= the Open Model Zoo 2023.0 release; /work/shared/models/.../README.md)
DIGESTS = {
    f"FP16/{NAME}.xml": "ce53d2c9c08c0bd1c1660fb8a5b6d0e3e4ec19eb92f1036d2d83a85e83082dce",
    f"FP16/{NAME}.bin": "241229ca3d206321868d46ce74a3c0b06c49cea58db7dc70b2e842ff287545d1",
}
OUT = Path(__file__).resolve().parents[1] / "src/maskface/weights/face_reid_0095.onnx"
_DTYPES = {"f16": np.float16, "f32": np.float32, "i64": np.int64, "i32": np.int32}


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.replace(" ", "").split(",") if v]


def _check_digests(root: Path) -> None:
    for rel, want in DIGESTS.items():
        got = sha256_file(root / rel)
        if got != want:
            sys.exit(f"{root / rel}: SHA-256 {got} is not the staged release's {want}")


def convert(root: Path) -> onnx.ModelProto:
    """The ONNX graph of the FP16 IR under ``root``, weights in float32."""
    _check_digests(root)
    xml = ET.parse(root / f"FP16/{NAME}.xml").getroot()
    blob = (root / f"FP16/{NAME}.bin").read_bytes()
    layers = {lay.get("id"): lay for lay in xml.iter("layer")}
    # (to-layer, to-port) -> (from-layer, from-port)
    src = {(e.get("to-layer"), e.get("to-port")): (e.get("from-layer"), e.get("from-port"))
           for e in xml.find("edges")}
    consts: dict[str, np.ndarray] = {}   # tensor name -> value (Const / Convert of a Const)
    nodes, inits = [], []

    def tensor(lid: str, port: str) -> str:
        return f"t{lid}_{port}"

    def inputs(lay) -> list[str]:
        ports = [p.get("id") for p in lay.find("input").iter("port")]
        return [tensor(*src[(lay.get("id"), p)]) for p in ports]

    def out(lay) -> str:
        return tensor(lay.get("id"), next(lay.find("output").iter("port")).get("id"))

    def const_input(name: str) -> str:
        if name not in {i.name for i in inits}:
            inits.append(numpy_helper.from_array(consts[name].astype(np.float32), name))
        return name

    graph_in = graph_out = None
    for lid in sorted(layers, key=int):
        lay = layers[lid]
        kind, data = lay.get("type"), lay.find("data")
        attrs = data.attrib if data is not None else {}
        if kind == "Parameter":
            graph_in = out(lay)
            continue
        if kind == "Const":
            off, size = int(attrs["offset"]), int(attrs["size"])
            arr = np.frombuffer(blob[off:off + size], dtype=_DTYPES[attrs["element_type"]])
            consts[out(lay)] = arr.reshape(_ints(attrs["shape"]) or ())
            continue
        ins = inputs(lay)
        if kind == "Convert":  # f16 weight decompression: fold now
            if ins[0] not in consts:
                raise ValueError(f"layer {lid}: Convert of a computed tensor is not supported")
            consts[out(lay)] = consts[ins[0]].astype(_DTYPES[attrs["destination_type"]])
            continue
        if kind == "Result":
            graph_out = ins[0]
            continue
        ins = [const_input(i) if i in consts else i for i in ins]
        o = out(lay)
        if kind in ("Convolution", "GroupConvolution"):
            if attrs.get("auto_pad", "explicit") != "explicit":
                raise ValueError(f"layer {lid}: auto_pad {attrs['auto_pad']}")
            group = 1
            if kind == "GroupConvolution":  # (G, O/G, I/G, kh, kw) -> (O, I/G, kh, kw)
                w = consts[ins[1]]
                group = w.shape[0]
                consts[ins[1]] = w.reshape(w.shape[0] * w.shape[1], *w.shape[2:])
                inits[:] = [i for i in inits if i.name != ins[1]]
                const_input(ins[1])
            nodes.append(helper.make_node(
                "Conv", ins, [o], name=lay.get("name"), group=group,
                strides=_ints(attrs["strides"]), dilations=_ints(attrs["dilations"]),
                pads=_ints(attrs["pads_begin"]) + _ints(attrs["pads_end"])))
        elif kind in ("Add", "Multiply"):
            if attrs.get("auto_broadcast", "numpy") != "numpy":
                raise ValueError(f"layer {lid}: broadcast {attrs['auto_broadcast']}")
            nodes.append(helper.make_node("Add" if kind == "Add" else "Mul", ins, [o]))
        elif kind == "PReLU":
            slope = consts[ins[1]]
            if slope.size == 1:  # a scalar slope: LeakyRelu, ~2x faster than PRelu in ORT
                nodes.append(helper.make_node("LeakyRelu", ins[:1], [o],
                                              alpha=float(slope.reshape(()))))
            else:
                nodes.append(helper.make_node("PRelu", ins, [o]))
        elif kind == "Sigmoid":
            nodes.append(helper.make_node("Sigmoid", ins, [o]))
        elif kind == "AvgPool":
            if attrs.get("rounding_type", "floor") != "floor":
                raise ValueError(f"layer {lid}: rounding {attrs['rounding_type']}")
            nodes.append(helper.make_node(
                "AveragePool", ins, [o], kernel_shape=_ints(attrs["kernel"]),
                strides=_ints(attrs["strides"]),
                pads=_ints(attrs["pads_begin"]) + _ints(attrs["pads_end"]),
                count_include_pad=0 if attrs.get("exclude-pad") == "true" else 1))
        else:
            raise ValueError(f"layer {lid}: IR op {kind} is not supported")
    nodes.append(helper.make_node("Flatten", [graph_out], ["embedding"], axis=1))
    # graph inputs renamed to stable names
    for n in nodes:
        n.input[:] = ["image" if i == graph_in else i for i in n.input]
    used = {i for n in nodes for i in n.input}
    inits = [i for i in inits if i.name in used]  # e.g. the scalar slopes now in LeakyRelu
    graph = helper.make_graph(
        nodes, "face_reid_0095",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 128, 128])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 256])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="maskface scripts/convert_reid_ir.py")
    model.ir_version = 8
    for k, v in {"embedder_name": "reid0095", "embedding_dim": "256",
                 "input": "BGR 0..255, 128x128, own 5-point template (maskface.align)",
                 "source": f"Open Model Zoo 2023.0 {NAME} FP16 IR (Intel, Apache-2.0)"}.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ir_dir", type=Path, help=f"folder holding FP16/{NAME}.xml/.bin")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    model = convert(args.ir_dir)
    onnx.save(model, args.out)
    data = args.out.read_bytes()
    print(f"wrote {args.out} ({len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()})")


if __name__ == "__main__":
    main()

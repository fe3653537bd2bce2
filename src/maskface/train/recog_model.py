"""SFace graph surgery (needs ``onnx``): the frozen backbone's features for training, and the
adapted recogniser exported as one ONNX graph (SFace backbone + the trained head).

SFace ends ``bn1 (N,1024,7,7) -> Flatten -> Gemm (pre_fc1) -> BatchNorm (fc1)``. Training reads
the cached ``Flatten`` output and learns a low-rank residual added to SFace's embedding; the
export keeps SFace whole and adds that branch, so the input contract (RGB 0..255,
(N,3,112,112)) is SFace's and one session runs the whole embedder.

reid0095's last feature map is read the same way for ``maskface train alignment``, whose fitted
map is exported after reid0095's layers (:func:`export_masked_alignment`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FEATURES = "flatten_254"
FEATURE_DIM = 1024 * 7 * 7
_TAIL = ("pre_fc1", "fc1")


def fast_prelu(model):
    """Rewrite every PRelu as ``Max(x, slope * x)`` (or, where a slope exceeds 1, as
    ``Relu(x) + slope * (x - Relu(x))``): the same values, bit for bit, in ~0.55x the CPU time.

    onnxruntime's PRelu kernel is slow and cannot stay in the blocked (NCHWc) layout of the
    convolutions around it: it took 17 of SFace's 30 ms per face on one core.
    """
    from onnx import helper, numpy_helper

    g = model.graph
    values = {i.name: i for i in g.initializer}
    nodes = []
    for node in g.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        top = float(numpy_helper.to_array(values[slope]).max()) if slope in values else np.inf
        if top <= 1.0:  # then max(x, s*x) is s*x for x < 0 and x for x >= 0
            nodes += [helper.make_node("Mul", [x, slope], [f"{y}_sx"]),
                      helper.make_node("Max", [x, f"{y}_sx"], [y])]
        else:
            nodes += [helper.make_node("Relu", [x], [f"{y}_pos"]),
                      helper.make_node("Sub", [x, f"{y}_pos"], [f"{y}_neg"]),
                      helper.make_node("Mul", [f"{y}_neg", slope], [f"{y}_sneg"]),
                      helper.make_node("Add", [f"{y}_pos", f"{y}_sneg"], [y])]
    del g.node[:]
    g.node.extend(nodes)
    return model


def _sface():
    import onnx

    from maskface.models import model_bytes

    m = onnx.load_from_string(model_bytes("sface"))
    # The release lists its weights (and unused names) as graph inputs, which stops
    # onnxruntime from folding batch norms into convolutions: keep only the image input.
    keep = [i for i in m.graph.input if i.name == "data"]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    del m.graph.value_info[:]  # stale batch-1 shapes
    return fast_prelu(m)


def backbone_session(threads: int | None = None):
    """onnxruntime session: aligned RGB faces (N,3,112,112) -> (SFace embedding (N,128),
    features (N,50176))."""
    import onnx

    from maskface.models import ort_session

    m = _sface()
    m.graph.output.append(onnx.helper.make_tensor_value_info(FEATURES, onnx.TensorProto.FLOAT,
                                                             ["N", FEATURE_DIM]))
    # SFace's weights are int8 block-quantised: fold them to float once, not on every run.
    return ort_session(m.SerializeToString(), threads, fold_quantized=True)


def _tmpdir() -> str:
    import tempfile

    d = Path(tempfile.gettempdir()) / "maskface-train"
    d.mkdir(exist_ok=True)
    return str(d)


def sface_tail() -> tuple[np.ndarray, np.ndarray]:
    """SFace's own tail folded into one linear map ``emb = f @ W.T + b`` (W (128, 50176))."""
    import onnx
    from onnx import numpy_helper

    from maskface.models import ort_session

    m = _sface()
    names = ["pre_fc1_weight_dequantized", "pre_fc1_bias_dequantized"]
    for n in names:
        m.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT,
                                                                 None))
    path = Path(_tmpdir()) / "sface_tail.onnx"
    onnx.save(m, path)
    sess = ort_session(path, 1)
    w, b = sess.run(names, {"data": np.zeros((1, 3, 112, 112), np.float32)})
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    bn = next(n for n in m.graph.node if n.output[0] == "fc1")
    eps = next(a.f for a in bn.attribute if a.name == "epsilon")
    gamma, beta, mean, var = (inits[bn.input[k]].astype(np.float64) for k in range(1, 5))
    scale = gamma / np.sqrt(var + eps)
    w_f = (w.astype(np.float64) * scale[:, None]).astype(np.float32)
    b_f = ((b - mean) * scale + beta).astype(np.float32)
    return w_f, b_f


def extract_features(crops: np.ndarray, batch: int = 64, progress: bool = True
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Backbone features (float16, (M, 50176)) and SFace embeddings (float32) of aligned BGR
    crops."""
    from maskface.progress import progress as bar

    sess = backbone_session()
    feats = np.zeros((len(crops), FEATURE_DIM), np.float16)
    embs = np.zeros((len(crops), 128), np.float32)
    for i in bar(range(0, len(crops), batch), desc="backbone", show=progress,
                  mininterval=5):
        x = np.ascontiguousarray(crops[i:i + batch][..., ::-1].transpose(0, 3, 1, 2),
                                 dtype=np.float32)
        e, f = sess.run(None, {"data": x})
        feats[i:i + batch] = f
        embs[i:i + batch] = e
    return feats, embs


def _save(m, path: str | Path, metadata: dict) -> Path:
    """Check and save an ONNX model with ``metadata`` as its properties."""
    import onnx

    del m.metadata_props[:]
    for k, val in metadata.items():
        m.metadata_props.append(onnx.StringStringEntryProto(
            key=k, value=val if isinstance(val, str) else json.dumps(val)))
    onnx.checker.check_model(m)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, path)
    return path


def export_adapted(u: np.ndarray, v: np.ndarray, path: str | Path, metadata: dict) -> Path:
    """SFace plus the trained low-rank residual ``U (V f)`` as one ONNX graph with metadata.

    SFace's own layers are kept as they are (int8 weights); ``V`` is stored as float16 (cast to
    float32 in the graph) to keep the file small.
    """
    import onnx
    from onnx import helper, numpy_helper

    m = _sface()
    m.graph.initializer.extend([
        numpy_helper.from_array(np.ascontiguousarray(v.T, np.float16), "residual_v_t"),
        numpy_helper.from_array(np.ascontiguousarray(u.T, np.float32), "residual_u_t")])
    m.graph.node.extend([
        helper.make_node("Cast", ["residual_v_t"], ["residual_v_t32"], to=onnx.TensorProto.FLOAT),
        helper.make_node("MatMul", [FEATURES, "residual_v_t32"], ["residual_low"]),
        helper.make_node("MatMul", ["residual_low", "residual_u_t"], ["residual"]),
        helper.make_node("Add", [m.graph.output[0].name, "residual"], ["embedding"]),
    ])
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info("embedding", onnx.TensorProto.FLOAT,
                                                        ["N", u.shape[0]]))
    return _save(m, path, metadata)


# --- face-reidentification-retail-0095 -------------------------------------------------------
#
# The converted graph ends ``LeakyRelu (N,512,8,8) -> depthwise 8x8 Conv + bias -> 1x1 Conv
# (512 -> 256) -> Flatten``: the LeakyRelu's output is its last non-linear feature map.

REID_FEATURES = "t675_2"
REID_FEATURE_DIM = 512 * 8 * 8


def _reid_with_features():
    """reid0095 with its last feature map, flattened, as a second output."""
    import onnx
    from onnx import helper

    from maskface.models import model_bytes

    m = onnx.load_from_string(model_bytes("face_reid_0095"))
    m.graph.node.append(helper.make_node("Flatten", [REID_FEATURES], ["reid_features"], axis=1))
    m.graph.output.append(helper.make_tensor_value_info("reid_features", onnx.TensorProto.FLOAT,
                                                        ["N", REID_FEATURE_DIM]))
    return m


def extract_reid_features(crops: np.ndarray, batch: int = 64, progress: bool = True
                          ) -> tuple[np.ndarray, np.ndarray]:
    """reid0095 features (float16, (M, 32768)) and embeddings (float32) of aligned BGR crops."""
    from maskface.models import ort_session
    from maskface.progress import progress as bar
    from maskface.recognize.onnx_embedder import reid0095_input

    sess = ort_session(_reid_with_features().SerializeToString())
    name = sess.get_inputs()[0].name
    feats = np.zeros((len(crops), REID_FEATURE_DIM), np.float16)
    embs = np.zeros((len(crops), 256), np.float32)
    for i in bar(range(0, len(crops), batch), desc="backbone", show=progress,
                  mininterval=5):
        e, f = sess.run(None, {name: reid0095_input(crops[i:i + batch])})
        feats[i:i + batch] = f
        embs[i:i + batch] = e.reshape(len(e), -1)
    return feats, embs


def export_masked_alignment(w: np.ndarray, b: np.ndarray, path: str | Path, metadata: dict
                            ) -> Path:
    """reid0095's layers up to its last feature map, then ``offsets = f @ w + b`` (N, 10), as
    one ONNX graph with metadata (input as reid0095's)."""
    import onnx
    from onnx import helper, numpy_helper
    from onnx.utils import Extractor

    full = _reid_with_features()
    m = Extractor(full).extract_model([full.graph.input[0].name], ["reid_features"])
    m.graph.initializer.extend([
        numpy_helper.from_array(np.ascontiguousarray(w, np.float32), "alignment_w"),
        numpy_helper.from_array(np.ascontiguousarray(b, np.float32), "alignment_b")])
    m.graph.node.extend([
        helper.make_node("MatMul", ["reid_features", "alignment_w"], ["alignment_raw"]),
        helper.make_node("Add", ["alignment_raw", "alignment_b"], ["offsets"])])
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info("offsets", onnx.TensorProto.FLOAT,
                                                        ["N", w.shape[1]]))
    del m.opset_import[:]
    m.opset_import.extend(full.opset_import)
    m.ir_version = full.ir_version
    return _save(m, path, metadata)

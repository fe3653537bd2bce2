"""Make ``src/maskface/weights/sface_fast.onnx`` from the registry's SFace, and apply the same
rewrite to the shipped masked-face recogniser.

Same weights (still int8 block-quantised, folded at load), same outputs bit for bit; only the
graph changes (``maskface.train.recog_model``):

* the release lists its weights as graph inputs (which stops onnxruntime folding the batch
  norms) and fixes the batch to 1: only the image input is kept, with a dynamic batch;
* every PRelu becomes ``Max(x, slope * x)``: onnxruntime's PRelu kernel took 17 of the 30 ms
  per face on one core.

Checks both graphs against the originals on real aligned faces before writing. Needs the
``onnx`` package (the ``train`` extra).

    .venv/bin/python scripts/export_sface_fast.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx

from maskface.align import align_face
from maskface.cli.detect import DEMO_IMAGES, demo_image
from maskface.detect import create_detector
from maskface.io.image import load_image
from maskface.models import model_path, ort_session, sha256_file
from maskface.train.recog_model import _sface, fast_prelu

WEIGHTS = Path(__file__).resolve().parents[1] / "src/maskface/weights"


def _faces() -> np.ndarray:
    """The two built-in photos' faces, aligned, as SFace's NCHW RGB float input."""
    det = create_detector("yunet")
    crops = []
    for name in DEMO_IMAGES:
        img = load_image(demo_image(name))
        crops.append(align_face(img, det.detect(img).landmarks[0]))
    crops = np.stack(crops)
    return np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)


def _run(model: bytes | str, x: np.ndarray) -> np.ndarray:
    sess = ort_session(model, 1, fold_quantized=True)
    feed = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
            for i in sess.get_inputs()[1:]}  # the release's unused weight inputs
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 1], **feed})[0]
                           for i in range(len(x))])


def main() -> int:
    x = _faces()
    fast = _sface()
    onnx.checker.check_model(fast)
    ref, new = _run(str(model_path("sface")), x), _run(fast.SerializeToString(), x)
    print(f"sface_fast vs SFace: max abs diff {np.abs(ref - new).max():.2e}")
    if not np.allclose(ref, new, atol=1e-5):
        return 1
    out = WEIGHTS / "sface_fast.onnx"
    onnx.save(fast, out)
    print(f"{out}  sha256 {sha256_file(out)}")

    masked_path = WEIGHTS / "recognizer_sface_masked.onnx"
    masked = onnx.load(masked_path)
    if any(n.op_type == "PRelu" for n in masked.graph.node):
        ref = _run(str(masked_path), x)
        masked = fast_prelu(masked)
        new = _run(masked.SerializeToString(), x)
        print(f"recognizer_sface_masked rewritten: max abs diff {np.abs(ref - new).max():.2e}")
        if not np.allclose(ref, new, atol=1e-5):
            return 1
        onnx.save(masked, masked_path)
    print(f"{masked_path}  sha256 {sha256_file(masked_path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

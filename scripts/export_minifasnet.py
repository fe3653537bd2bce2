"""Make ``src/maskface/weights/liveness_minifasnet.onnx`` from Minivision's two MiniFASNet state
dicts (Apache-2.0), staged in ``shared/models/minifasnet``.

Checks each ``.pth`` against its published SHA-256, rebuilds both networks
(``maskface.train.minifasnet``), loads them strictly and exports ONE graph: inputs ``crop_2_7``
and ``crop_4_0`` (N, 3, 80, 80, BGR 0..255), output ``probs`` (N, 3), the mean of the two
softmaxes (class 1 = live). Every PRelu is then rewritten as ``Max(x, slope * x)`` (the same
values; onnxruntime's PRelu kernel is slow, see ``maskface.train.recog_model.fast_prelu``).
Verifies onnxruntime against PyTorch on random crops. Needs the ``train`` extra (torch, onnx).

    .venv/bin/python scripts/export_minifasnet.py [--src ../shared/models/minifasnet]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

from maskface.train.minifasnet import LivenessPair, load_minifasnet

OUT = Path(__file__).resolve().parents[1] / "src/maskface/weights/liveness_minifasnet.onnx"
FILES = {
    "2.7_80x80_MiniFASNetV2.pth":
        ("MiniFASNetV2", "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0"),
    "4_0_0_80x80_MiniFASNetV1SE.pth":
        ("MiniFASNetV1SE", "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=str(Path(__file__).resolve().parents[2]
                                         / "shared/models/minifasnet"))
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    models = []
    for name, (arch, digest) in FILES.items():
        path = Path(args.src) / name
        got = hashlib.sha256(path.read_bytes()).hexdigest()
        if got != digest:
            print(f"{path}: SHA-256 {got} != {digest}", file=sys.stderr)
            return 1
        models.append(load_minifasnet(path, arch))
    pair = LivenessPair(*models).eval()
    torch.manual_seed(0)
    a, b = torch.rand(4, 3, 80, 80) * 255, torch.rand(4, 3, 80, 80) * 255
    torch.onnx.export(pair, (a, b), args.out, dynamo=False, opset_version=13,
                      input_names=["crop_2_7", "crop_4_0"], output_names=["probs"],
                      dynamic_axes={"crop_2_7": {0: "n"}, "crop_4_0": {0: "n"}, "probs": {0: "n"}})
    import onnx
    import onnxruntime as ort

    from maskface.train.recog_model import fast_prelu

    model = onnx.load(args.out)
    n_prelu = sum(n.op_type == "PRelu" for n in model.graph.node)
    onnx.save(fast_prelu(model), args.out)

    sess = ort.InferenceSession(args.out, providers=["CPUExecutionProvider"])
    a, b = torch.rand(7, 3, 80, 80) * 255, torch.rand(7, 3, 80, 80) * 255
    with torch.no_grad():
        ref = pair(a, b).numpy()
    got = sess.run(None, {"crop_2_7": a.numpy(), "crop_4_0": b.numpy()})[0]
    err = float(np.abs(ref - got).max())
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes, "
          f"sha256 {hashlib.sha256(Path(args.out).read_bytes()).hexdigest()}); "
          f"{n_prelu} PRelu rewritten; max |onnxruntime - torch| = {err:.2e}")
    return 0 if err < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())

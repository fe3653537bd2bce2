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
import sys
from pathlib import Path

from maskface.models import sha256_file
from maskface.train.minifasnet import LivenessPair, export_onnx, load_minifasnet

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
        got = sha256_file(path)
        if got != digest:
            print(f"{path}: SHA-256 {got} != {digest}", file=sys.stderr)
            return 1
        models.append(load_minifasnet(path, arch))
    pair = LivenessPair(*models).eval()
    err = export_onnx(pair, args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes, "
          f"sha256 {sha256_file(Path(args.out))}); "
          f"max |onnxruntime - torch| = {err:.2e}")
    return 0 if err < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Fit how each detector's box maps to the box shape MiniFASNet was trained on.

The liveness crop is box-dependent (shared/models/minifasnet/README.md): the models expect the
reference Caffe RetinaFace's near-square box. That README gives the YuNet → reference relation
(width x1.143, height x0.892, centre y + 0.056 x height, fitted on 294 LFW images). Here every
other detector is related to that mapped YuNet box on LFW images (no liveness data), as median
ratios: width, height, centre-x and centre-y offsets in units of the detector's own box.
Output is the table pasted into ``maskface/liveness/crop.py``.

    .venv/bin/python scripts/fit_liveness_boxes.py ../shared/data/lfw/images --n 300
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from maskface.detect import create_detector
from maskface.io.image import load_image
from maskface.liveness.crop import REFERENCE_FROM, to_reference


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    files = sorted(Path(args.root).rglob("*.jpg"))
    random.Random(0).shuffle(files)
    files = files[: args.n]
    yunet = create_detector("yunet")
    others = {n: create_detector(n) for n in ("retinaface", "mtcnn")}
    rows: dict[str, list] = {n: [] for n in others}
    for f in files:
        img = load_image(f)
        y = yunet.detect(img)
        if len(y) == 0:
            continue
        yb = y.boxes[int(np.argmax(y.scores))]
        ref = to_reference(yb, REFERENCE_FROM["yunet"])
        for name, det in others.items():
            d = det.detect(img)
            if len(d) == 0:
                continue
            b = d.boxes[int(np.argmax(d.scores))]
            w, h = b[2] - b[0], b[3] - b[1]
            rw, rh = ref[2] - ref[0], ref[3] - ref[1]
            rows[name].append((rw / w, rh / h, ((ref[0] + ref[2]) - (b[0] + b[2])) / 2 / w,
                               ((ref[1] + ref[3]) - (b[1] + b[3])) / 2 / h))
    for name, r in rows.items():
        a = np.array(r)
        med = np.median(a, 0)
        q1, q3 = np.percentile(a, 25, 0), np.percentile(a, 75, 0)
        print(f"{name}: n={len(a)} width x{med[0]:.3f} height x{med[1]:.3f} "
              f"dx {med[2]:+.3f} dy {med[3]:+.3f}  IQR " +
              " ".join(f"{lo:.3f}-{hi:.3f}" for lo, hi in zip(q1, q3)))


if __name__ == "__main__":
    main()

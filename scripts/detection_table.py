"""Detector configurations compared on a scenes dataset (the table in docs/detection.md).

Usage: MASKFACE_THREADS=1 python scripts/detection_table.py SCENES_DIR OUT.json [CONFIG ...]

For every configuration: recall, precision, false detections, recall by face size and by class
on all images and on the two halves (even / odd positions in natural name order: configurations
and thresholds were chosen on the even half, so the odd half is held out), plus the detector's
CPU time per image. Runs single-threaded so CPU times compare across a busy machine.
"""

from __future__ import annotations

import json
import os
import sys
import time

import cv2
import numpy as np

from maskface.detect import create_detector
from maskface.eval.pipeline import ImageEval, summarise
from maskface.eval.scenes import load_scenes
from maskface.io import load_image
from maskface.progress import progress

CONFIGS: dict[str, tuple[str, dict]] = {
    "yunet-640": ("yunet", {"input_size": 640}),
    "yunet-1024": ("yunet", {"input_size": 1024}),
    "yunet-1024-2scale-flip": ("yunet", {"input_size": 1024, "scales": (0.625, 1.0),
                                         "flip": True, "score_threshold": 0.5}),
    "retinaface-640": ("retinaface", {"input_size": 640}),
    "retinaface-1024": ("retinaface", {"input_size": 1024}),
    "retinaface-1024-tile": ("retinaface", {"input_size": 1024, "tile": True}),
    "retinaface-1024-2scale": ("retinaface", {"input_size": 1024, "scales": (0.625, 1.0),
                                              "score_threshold": 0.4}),
    "mtcnn": ("mtcnn", {}),
}


def main(scenes_dir: str, out: str, names: list[str]) -> None:
    cv2.setNumThreads(int(os.environ.get("MASKFACE_THREADS", 1)))
    scenes = load_scenes(scenes_dir)
    images = [load_image(s.path) for s in scenes]
    results = {}
    for name in names or list(CONFIGS):
        det_name, kwargs = CONFIGS[name]
        det = create_detector(det_name, **kwargs)
        det.detect(images[0])  # warm-up
        evals, cpu = [], []
        for scene, img in progress(list(zip(scenes, images)), desc=name, leave=False):
            c0 = time.process_time()
            d = det.detect(img)
            cpu.append((time.process_time() - c0) * 1e3)
            evals.append(ImageEval(scene, d.boxes.astype(np.float64), d.scores, [None] * len(d),
                                   np.full(len(d), np.nan)))
        row = {"detector": det_name, "options": kwargs,
               "cpu_ms_per_image": round(float(np.mean(cpu)), 1)}
        for part, sel in (("all", evals), ("even", evals[0::2]), ("odd", evals[1::2])):
            rep = summarise(sel, classified=False)
            row[part] = {"recall": rep["detection"]["recall"],
                         "precision": rep["detection"]["precision"],
                         "false_detections": rep["false_detections"],
                         "recall_by_size": {k: v["recall"] for k, v in
                                            rep["detection"]["recall_by_size"].items()},
                         "recall_by_label": {k: v["recall"] for k, v in
                                             rep["detection"]["recall_by_label"].items()}}
        results[name] = row
        a = row["all"]
        print(f"{name:<26} recall {a['recall']:.3f} FD {a['false_detections']:>3} | odd half "
              f"{row['odd']['recall']:.3f}/{row['odd']['false_detections']} | "
              f"{row['cpu_ms_per_image']:.0f} ms CPU", flush=True)
        with open(out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])

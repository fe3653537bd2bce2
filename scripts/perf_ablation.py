"""Before/after of each speed-up, measured one configuration per process (docs/performance.md).

Each step switches one optimisation off again (by patching, in its own process) so its effect is
measured on the same machine in the same run:

    .venv/bin/python scripts/perf_ablation.py [--classifier FILE] [--repeats 10] [--out FILE.json]

Reports per-frame wall and CPU milliseconds (median) for detect+classify and for the full
pipeline with recognition, on the bench's built-in 640x480 frames (1-3 faces).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

STEPS = [
    ("before: YuNet@1024 on OpenCV DNN, ORT spinning, SFace dequantised per run, "
     "faces one at a time", dict(det_size=1024, yunet_cv2=True, spin=True, dq_per_run=True,
                                  batched=False)),
    ("+ detector input 640 px (native frame)", dict(det_size=640, yunet_cv2=True, spin=True,
                                                    dq_per_run=True, batched=False)),
    ("+ classifier/embedder faces batched", dict(det_size=640, yunet_cv2=True, spin=True,
                                                 dq_per_run=True, batched=True)),
    ("+ onnxruntime threads do not spin", dict(det_size=640, yunet_cv2=True, spin=False,
                                               dq_per_run=True, batched=True)),
    ("+ SFace weights folded to float32 at load", dict(det_size=640, yunet_cv2=True,
                                                       spin=False, dq_per_run=False, batched=True)),
    ("+ YuNet on onnxruntime (= current)", dict(det_size=640, yunet_cv2=False, spin=False,
                                                dq_per_run=False, batched=True)),
]


def run_one(cfg: dict, classifier: str, repeats: int) -> dict:
    """Inside a fresh process: build the pipeline as ``cfg`` says and time it."""
    import cv2
    import onnxruntime as ort

    import maskface.models as models

    real = models.ort_session

    def ort_session(name_or_path, threads=None):
        sess = real(name_or_path, threads)
        if not (cfg["spin"] or cfg["dq_per_run"]):
            return sess
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = sess.get_session_options().intra_op_num_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if not cfg["spin"]:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if not cfg["dq_per_run"] and "int8bq" in str(models.MODELS.get(str(name_or_path), "")):
            opts.add_session_config_entry("session.disable_quant_qdq", "1")
        src = (str(name_or_path) if str(name_or_path).endswith(".onnx")
               else models.model_bytes(str(name_or_path)))
        return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])

    import maskface.classify.classifier as cc
    import maskface.detect.yunet_onnx as yo
    import maskface.recognize.onnx_embedder as oe

    for mod in (models, cc, oe, yo):
        mod.ort_session = ort_session
    from maskface.align import align_faces
    from maskface.bench.images import builtin_images, encode_jpeg
    from maskface.bench.timing import measure
    from maskface.classify import MaskClassifier
    from maskface.detect import create_detector
    from maskface.io.image import decode_image
    from maskface.recognize import create_embedder

    det = create_detector("yunet", input_size=cfg["det_size"])
    if cfg["yunet_cv2"]:
        det._net = cv2.FaceDetectorYN.create(str(models.model_path("yunet")), "", (320, 320),
                                             det.pass_threshold, 0.3, 5000)
    clf = MaskClassifier() if classifier == "default" else MaskClassifier(classifier)
    emb = create_embedder("sface")
    jpegs = [encode_jpeg(im) for im in builtin_images()]

    def classify(img, boxes):
        if cfg["batched"]:
            return clf.classify(img, boxes)
        return [clf.classify(img, b[None]) for b in boxes]

    def embed(img, lms):
        if cfg["batched"]:
            return emb.embed(align_faces(img, lms))
        return [emb.embed(align_faces(img, lm[None])) for lm in lms]

    def detect_classify(jpeg):
        img = decode_image(jpeg)
        d = det.detect(img)
        classify(img, d.boxes)
        return img, d

    def full(jpeg):
        img, d = detect_classify(jpeg)
        embed(img, d.landmarks)

    a = measure(detect_classify, jpegs, repeats=repeats, warmup=1)
    b = measure(full, jpegs, repeats=repeats, warmup=1)
    return {"detect_classify": a.to_dict(), "full": b.to_dict()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--classifier", default="default")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default=None)
    ap.add_argument("--step", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step is not None:
        print(json.dumps(run_one(STEPS[args.step][1], args.classifier, args.repeats)))
        return 0
    rows = []
    print("| step | detect+classify ms (CPU ms) | full ms (CPU ms) |\n|---|---:|---:|")
    for k, (name, _cfg) in enumerate(STEPS):
        res = subprocess.run([sys.executable, __file__, "--step", str(k), "--classifier",
                              args.classifier, "--repeats", str(args.repeats)],
                             capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append({"step": name, **r})
        dc, fu = r["detect_classify"], r["full"]
        print(f"| {name} | {dc['median_ms']:.1f} ({dc['cpu_ms']:.1f}) | "
              f"{fu['median_ms']:.1f} ({fu['cpu_ms']:.1f}) |", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

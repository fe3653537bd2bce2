"""``maskface bench``: stage-by-stage and end-to-end timings of the pipeline and of the seeds'
baseline, measured in one run so the report can state a ratio."""

from __future__ import annotations

import logging
import os
import platform
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from maskface.bench.timing import (
    Stat,
    measure,
    measure_interleaved,
    measure_paired,
    measure_streams,
    peak_rss_mb,
)
from maskface.results import MASKED_LABELS

log = logging.getLogger(__name__)


@dataclass
class BenchConfig:
    """What to time and how. ``images`` are BGR frames, all of one size."""

    images: list[np.ndarray]
    image_source: str = "built-in"
    #: the same frames with masked faces (built-in set only): ``full_masked`` times them, and
    #: the first (one face) is the ``kiosk_masked`` frame beside the plain one's ``kiosk``
    masked_images: list[np.ndarray] | None = None
    repeats: int = 5
    warmup: int = 1
    batch: int = 8
    detector: str = "yunet"
    #: detector input size (YuNet's longest side); ``None`` keeps the detector's default
    det_size: int | None = None
    #: further detector options (a detection profile's), under ``det_size``
    detector_options: dict = field(default_factory=dict)
    classifier: str = "default"
    #: a second classifier timed in pairs with ``classifier`` (detect+classify and the
    #: classify stage on the same frames, back to back), for a ratio with an interval
    against: str | None = None
    #: embedder name (``default``, ``sface`` or an ONNX path); ``None`` skips recognition
    embedder: str | None = "default"
    gallery_size: int = 100
    match_threshold: float = 0.4
    baseline: bool = True
    baseline_model: Path | None = None
    scenes: Path | None = None
    scenes_limit: int = 60
    threads: int | None = None
    #: parallel streams for the throughput runs (one single-threaded pipeline each);
    #: ``None`` = one per core, 1 = skip them
    streams: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_embedder(name: str):
    """The embedder to time: the project's default when it is installed, else SFace."""
    if name == "default":
        try:
            from maskface.recognize import create_embedder  # the project's default
        except ImportError:
            name = "sface"
        else:
            return create_embedder()
    if name == "sface":
        from maskface.recognize.onnx_embedder import SFaceEmbedder

        return SFaceEmbedder()
    if not name.endswith(".onnx"):  # a named embedder (sface_masked, reid0095, fused)
        from maskface.recognize import create_embedder

        return create_embedder(name)
    from maskface.recognize.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(name)


def _random_gallery(path: Path, embedder, people: int, per_person: int = 5, seed: int = 0):
    """A gallery of ``people`` random identities: search cost depends on size, not content."""
    from maskface.gallery import Gallery
    from maskface.recognize.base import l2_normalize

    rng = np.random.default_rng(seed)
    gallery = Gallery(path, model=embedder.name, dim=embedder.dim)
    for i in range(people):
        gallery.enroll(f"person{i:05d}",
                       l2_normalize(rng.normal(size=(per_person, embedder.dim))))
    return gallery


class OurPipeline:
    """The project's stages, built once; every method is one timed unit."""

    def __init__(self, cfg: BenchConfig, workdir: Path):
        from maskface.classify import MaskClassifier
        from maskface.detect import create_detector

        kwargs = {**cfg.detector_options,
                  **({"input_size": cfg.det_size} if cfg.det_size else {})}
        self.detector = create_detector(cfg.detector, **kwargs)
        self.classifier = MaskClassifier(cfg.classifier)
        self.against = MaskClassifier(cfg.against) if cfg.against else None
        self.embedder = self.gallery = self.kiosk = None
        self.threshold = cfg.match_threshold
        from maskface.liveness import LivenessChecker
        from maskface.quality import QualityAssessor

        # the kiosk's extra stages (access checks only)
        self.liveness = LivenessChecker(self.detector.name)
        self.quality = QualityAssessor()
        if cfg.embedder:
            from maskface.pipeline import Pipeline
            from maskface.recognize.recognizer import Recognizer

            self.embedder = load_embedder(cfg.embedder)
            self.gallery = _random_gallery(workdir / "bench-gallery.db", self.embedder,
                                           cfg.gallery_size)
            # what a door runs per frame: every stage, the gallery's per-condition thresholds
            self.kiosk = Pipeline(self.detector, self.classifier,
                                  Recognizer(self.embedder, self.gallery),
                                  self.liveness, self.quality)

    @property
    def recognition(self) -> bool:
        return self.embedder is not None

    def detect_classify(self, jpeg: bytes, classifier=None):
        """Decode, detect, classify (with ``classifier`` instead of ours when given)."""
        from maskface.io.image import decode_image

        img = decode_image(jpeg)
        det = self.detector.detect(img)
        return img, det, (classifier or self.classifier).classify(img, det.boxes)

    def full(self, jpeg: bytes):
        from maskface.align import align_faces

        img, det, preds = self.detect_classify(jpeg)
        if len(det):
            # routed by the classifier's labels, as the pipeline's Recognizer does
            masked = [p.label in MASKED_LABELS for p in preds]
            emb = self.embedder.embed(align_faces(img, det.landmarks), masked)
            self.gallery.identify(self.embedder.weigh(emb, masked), self.threshold)
        return preds

    def close(self) -> None:
        if self.gallery is not None:
            self.gallery.close()

    def full_batched(self, jpegs: list[bytes], recognise: bool):
        """Several frames: detection per frame, then one classifier batch and one embedder
        batch for all their faces (how a multi-camera server or ``maskface batch`` runs)."""
        from maskface.align import align_faces
        from maskface.io.image import decode_image

        crops, aligned = [], []
        for jpeg in jpegs:
            img = decode_image(jpeg)
            det = self.detector.detect(img)
            crops.append(self.classifier.crops(img, det.boxes))
            if recognise:
                aligned.append(align_faces(img, det.landmarks))
        preds = self.classifier.to_predictions(self.classifier.predict_proba(
            np.concatenate(crops)))
        if recognise:
            faces = np.concatenate(aligned)
            if len(faces):
                masked = [p.label in MASKED_LABELS for p in preds]
                emb = self.embedder.embed(faces, masked)
                self.gallery.identify(self.embedder.weigh(emb, masked), self.threshold)


@contextmanager
def _single_threaded() -> Iterator[None]:
    """Models built and OpenCV run with one thread each, for the parallel-stream runs: on a
    few cores, one stream per core beats every stream spreading itself over all of them."""
    import cv2

    from maskface.models import session_threads

    old_cv = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with session_threads(1):
            yield
    finally:
        cv2.setNumThreads(old_cv)


def _environment(cfg: BenchConfig) -> dict[str, Any]:
    import cv2
    import onnxruntime as ort

    from maskface.machine import cpu_name

    return {
        "cpu_count": os.cpu_count(),
        "threads": cfg.threads or int(os.environ.get("MASKFACE_THREADS", 0)) or os.cpu_count(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": cpu_name(),
        "onnxruntime": ort.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }


def _against(cfg: BenchConfig, ours: OurPipeline, jpegs: list[bytes], pairs: list
             ) -> dict[str, Any]:
    """``cfg.against`` (a) and our classifier (b), each pair on the same frame back to back:
    detect+classify end to end and the classify stage alone; ratios are ours / theirs."""
    other = ours.against
    run = dict(repeats=4 * cfg.repeats, warmup=cfg.warmup)
    return {"classifier": cfg.against,
            "detect_classify": measure_paired(lambda j: ours.detect_classify(j, other),
                                              ours.detect_classify, jpegs, **run).to_dict(),
            "classify": measure_paired(lambda p: other.classify(p[0], p[1].boxes),
                                       lambda p: ours.classifier.classify(p[0], p[1].boxes),
                                       pairs, **run).to_dict()}


def run_bench(cfg: BenchConfig, progress: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    """Time everything; return the report (see ``docs/performance.md`` for its fields)."""
    from maskface.align import align_faces
    from maskface.bench.images import encode_jpeg
    from maskface.io.image import decode_image

    say = progress or (lambda _msg: None)
    if cfg.threads:
        os.environ["MASKFACE_THREADS"] = str(cfg.threads)
        import cv2

        cv2.setNumThreads(cfg.threads)
    report: dict[str, Any] = {"environment": _environment(cfg)}
    h, w = cfg.images[0].shape[:2]
    jpegs = [encode_jpeg(im) for im in cfg.images]
    masked_jpegs = [encode_jpeg(im) for im in cfg.masked_images or ()]
    rss0 = peak_rss_mb()
    tmp = tempfile.TemporaryDirectory(prefix="maskface-bench-")
    ours = OurPipeline(cfg, Path(tmp.name))
    rss_loaded = peak_rss_mb()
    imgs = [decode_image(j) for j in jpegs]
    dets = [ours.detector.detect(im) for im in imgs]
    n_faces = [len(d) for d in dets]
    report["images"] = {"source": cfg.image_source, "count": len(imgs), "size": f"{w}x{h}",
                        "faces_per_image": n_faces, "faces_mean": float(np.mean(n_faces))}
    run = dict(repeats=cfg.repeats, warmup=cfg.warmup)
    stages: dict[str, Stat] = {}

    def time_stage(name: str, fn, items, per: int = 1) -> None:
        say(name)
        stages[name] = measure(fn, items, per=per, **run)

    pairs = list(zip(imgs, dets))
    time_stage("decode", decode_image, jpegs)
    time_stage("detect", ours.detector.detect, imgs)
    time_stage("align", lambda p: align_faces(p[0], p[1].landmarks), pairs)
    time_stage("classify", lambda p: ours.classifier.classify(p[0], p[1].boxes), pairs)
    time_stage("classify_one_at_a_time",
               lambda p: [ours.classifier.classify(p[0], b[None]) for b in p[1].boxes], pairs)
    # Liveness on every face of an image in one batch, and on one face at a time (the kiosk:
    # one person at the door), the figure quoted as "per face".
    time_stage("liveness", lambda p: ours.liveness.scores(p[0], p[1].boxes), pairs)
    one_face = [(im, b[None]) for im, d in pairs for b in d.boxes]
    if one_face:
        time_stage("liveness_per_face", lambda p: ours.liveness.scores(p[0], p[1]), one_face)
    from maskface.results import Face

    time_stage("quality", lambda p: ours.quality.assess(p[0], [
        Face(box=b, score=1.0, landmarks=lm) for b, lm in zip(p[1].boxes, p[1].landmarks)]),
        pairs)
    if ours.recognition:
        aligned = [align_faces(im, d.landmarks) for im, d in pairs]
        embs = [ours.embedder.embed(a) for a in aligned]
        time_stage("embed", ours.embedder.embed, aligned)
        # the same faces as if masked: the masked path (re-alignment, adapter) per face
        time_stage("embed_as_masked", lambda a: ours.embedder.embed(a, [True] * len(a)), aligned)
        # a fused embedder: each backbone alone, so the added latency per face is visible
        for part in getattr(ours.embedder, "parts", ()):
            time_stage(f"embed_{part.name}", part.embed, aligned)
        time_stage("match", lambda e: ours.gallery.identify(e, ours.threshold), embs)
    e2e: dict[str, Stat] = {}
    say("end to end")
    e2e["detect_classify"] = measure(ours.detect_classify, jpegs, **run)
    batch = [[jpegs[k % len(jpegs)] for k in range(cfg.batch)]]
    if cfg.against:
        say(f"detect+classify in pairs with {cfg.against}")
        report["against"] = _against(cfg, ours, jpegs, pairs)
    e2e[f"detect_classify_batched_x{cfg.batch}"] = measure(
        lambda b: ours.full_batched(b, False), batch * len(jpegs), per=cfg.batch, **run)
    if ours.recognition:
        e2e["full"] = measure(ours.full, jpegs, **run)
        if masked_jpegs:
            e2e["full_masked"] = measure(ours.full, masked_jpegs, **run)
        e2e[f"full_batched_x{cfg.batch}"] = measure(
            lambda b: ours.full_batched(b, True), batch * len(jpegs), per=cfg.batch, **run)
    streams = cfg.streams or os.cpu_count() or 1
    # Enough frames per round that every stream stays busy until the end.
    frames = [jpegs[k % len(jpegs)] for k in range(max(len(jpegs), 8 * streams))]
    if streams > 1:
        say(f"{streams} parallel streams")
        with _single_threaded():
            pipes = []
            for i in range(streams):
                (Path(tmp.name) / f"stream{i}").mkdir()
                pipes.append(OurPipeline(replace(cfg, against=None),
                                         Path(tmp.name) / f"stream{i}"))
            e2e[f"detect_classify_streams_x{streams}"] = measure_streams(
                [p.detect_classify for p in pipes], frames, **run)
            if ours.recognition:
                e2e[f"full_streams_x{streams}"] = measure_streams(
                    [p.full for p in pipes], frames, **run)
        for p in pipes:
            p.close()
        del pipes
    rss_ours = peak_rss_mb()

    base_report: dict[str, Any] | None = None
    baseline = None
    if cfg.baseline:
        from maskface.bench.baseline import BaselinePipeline

        say("baseline")
        baseline = BaselinePipeline(cfg.baseline_model)
        bdets = [baseline.detector.detect(im) for im in imgs]
        bstages = {
            "detect_ssd": measure(baseline.detector.detect, imgs, **run),
            "classify_224_one_at_a_time": measure(
                lambda p: baseline.classifier.classify(p[0], p[1].boxes),
                list(zip(imgs, bdets)), **run),
        }
        b_e2e = measure(lambda j: baseline.analyze(decode_image(j)), jpegs, **run)
        base_report = {
            "description": "OpenCV ResNet-10 SSD (300x300) + MobileNetV2 224 px, one face per run",
            "faces_per_image": [len(d) for d in bdets],
            "stages": {k: v.to_dict() for k, v in bstages.items()},
            "end_to_end": b_e2e.to_dict(),
        }
        ratio = {"detect_classify": b_e2e.median_ms / e2e["detect_classify"].median_ms,
                 "detect_classify_cpu": b_e2e.cpu_ms / max(e2e["detect_classify"].cpu_ms, 1e-9)}
        if ours.recognition:
            ratio["full"] = b_e2e.median_ms / e2e["full"].median_ms
        if streams > 1:
            # The baseline gets the same treatment: one single-threaded copy per stream.
            with _single_threaded():
                bases = [BaselinePipeline(cfg.baseline_model) for _ in range(streams)]
                b_streams = measure_streams(
                    [lambda j, b=b: b.analyze(decode_image(j)) for b in bases], frames, **run)
            base_report[f"end_to_end_streams_x{streams}"] = b_streams.to_dict()
            ratio["detect_classify_streams"] = (
                b_streams.median_ms / e2e[f"detect_classify_streams_x{streams}"].median_ms)
            if ours.recognition:
                ratio["full_streams"] = (b_streams.median_ms
                                         / e2e[f"full_streams_x{streams}"].median_ms)
        report["speedup_vs_baseline"] = {k: round(v, 2) for k, v in ratio.items()}
    if ours.recognition and masked_jpegs:
        # One person at the door (the one-face frame), bare-faced and masked, in turn with the
        # baseline's frame: the ratio survives a machine whose speed drifts.
        say("kiosk, interleaved with the baseline")
        door = {"kiosk": jpegs[0], "kiosk_masked": masked_jpegs[0]}
        fns = {k: (lambda j=j: ours.kiosk.analyze(j)) for k, j in door.items()}
        if baseline is not None:
            fns["baseline"] = lambda: baseline.analyze(decode_image(jpegs[0]))
        inter = measure_interleaved(fns, rounds=4 * cfg.repeats, warmup=cfg.warmup)
        e2e.update({k: inter[k] for k in door})
        if baseline is not None:
            b = inter["baseline"]
            base_report["kiosk_frame"] = b.to_dict()
            report["kiosk_vs_baseline"] = {k: round(inter[k].median_ms / b.median_ms, 2)
                                           for k in door}

    report["stages"] = {k: v.to_dict() for k, v in stages.items()}
    report["end_to_end"] = {k: v.to_dict() for k, v in e2e.items()}
    report["baseline"] = base_report
    report["memory_mb"] = {"before_models": round(rss0, 1),
                           "peak_after_loading_ours": round(rss_loaded, 1),
                           "peak_after_ours": round(rss_ours, 1),
                           # null without a baseline run: there is no "after" it
                           "peak_after_baseline": round(peak_rss_mb(), 1)
                           if baseline is not None else None}
    if cfg.scenes is not None:
        say("accuracy")
        report["accuracy"] = _accuracy(cfg, ours, baseline)
    report["environment"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    report["config"] = {"repeats": cfg.repeats, "warmup": cfg.warmup, "batch": cfg.batch,
                        "detector": cfg.detector, "det_size": cfg.det_size,
                        "detector_options": cfg.detector_options,
                        "classifier": cfg.classifier, "against": cfg.against,
                        "embedder": cfg.embedder,
                        "embedder_name": getattr(ours.embedder, "name", None),
                        "gallery_size": cfg.gallery_size, "streams": streams, **cfg.extra}
    ours.close()
    tmp.cleanup()
    return report


def _accuracy(cfg: BenchConfig, ours: OurPipeline, baseline) -> dict[str, Any]:
    """Scene accuracy of ours and of the baseline detector (with our classifier: the seeds'
    trained 224-px weights are not available)."""
    from maskface.bench.accuracy import scene_accuracy
    from maskface.eval.scenes import load_scenes

    scenes = load_scenes(cfg.scenes)[: cfg.scenes_limit]
    labels = ours.classifier.labels

    def ours_predict(img):
        det = ours.detector.detect(img)
        probs = ours.classifier.predict_proba(ours.classifier.crops(img, det.boxes))
        return det.boxes, [labels[int(k)] for k in probs.argmax(1)] if len(probs) else []

    out = {"scenes": str(cfg.scenes), "images": len(scenes),
           "ours": scene_accuracy(scenes, ours_predict).to_dict()}
    if baseline is not None:
        def base_predict(img):
            det = baseline.detector.detect(img)
            probs = ours.classifier.predict_proba(ours.classifier.crops(img, det.boxes))
            return det.boxes, [labels[int(k)] for k in probs.argmax(1)] if len(probs) else []

        out["baseline_detector_with_our_classifier"] = scene_accuracy(
            scenes, base_predict).to_dict()
    return out

"""``maskface batch``: analyse folders of images on Ray, resumably.

The driver lists the inputs, drops those in the done-list, and hands the rest to Ray Data as a
dataset of paths. ``map_batches`` runs :class:`FacePredictor`, a callable class, so each worker
actor loads the models once and then analyses batch after batch. The driver streams the results
back, writes them (Parquet or JSON lines, one file per batch) and appends the batch to the
done-list, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maskface.batch.manifest import InputFile, Manifest
from maskface.errors import InputError, MaskfaceError, require_extra
from maskface.jsonfile import write_json

log = logging.getLogger(__name__)

FORMATS = ("parquet", "jsonl")


def list_inputs(inputs: list[str]) -> tuple[list[InputFile], list[str], str | None]:
    """Image files from folders (recursive), globs, files, or ``.txt`` lists of paths; the
    inputs that could not be used, with reasons; and a line on the files in folders passed
    over as neither image nor video (``None`` if none)."""
    from maskface.io.sources import expand_sources

    items: list[str] = []
    for item in inputs:
        if item.endswith(".txt") and Path(item).is_file():
            with open(item) as f:
                items.extend(line.strip() for line in f if line.strip())
        else:
            items.append(item)
    files, problems = [], []
    sources = expand_sources(items)
    for src in sources:
        if src.error:
            problems.append(f"{src.path}: {src.error}")
        elif src.kind == "video":
            problems.append(f"{src.path}: a video (use 'maskface watch')")
        else:
            try:
                files.append(InputFile.of(src.path))
            except OSError as exc:
                problems.append(f"{src.path}: {exc.strerror}")
    return files, problems, sources.skipped_note()


def build_pipeline(detector: str, det_size: int | None, classifier: str | None):
    """The pipeline each worker actor runs; the driver builds it once first, so that a bad
    option is one error before Ray starts instead of a traceback from every actor."""
    from maskface.detect import create_detector
    from maskface.pipeline import Pipeline

    kwargs = {"input_size": det_size} if det_size else {}
    return Pipeline(detector=create_detector(detector, **kwargs), classifier=classifier)


class FacePredictor:
    """Ray Data callable class: the models are built once per worker actor."""

    def __init__(self, detector: str = "yunet", det_size: int | None = None,
                 classifier: str | None = "default", threads: int = 1):
        # Before any model is built: one actor per core, each single-threaded, scales best.
        os.environ["MASKFACE_THREADS"] = str(threads)
        import cv2

        cv2.setNumThreads(threads)
        self.pipeline = build_pipeline(detector, det_size, classifier)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list] = {k: [] for k in ("width", "height", "n_faces", "faces", "error",
                                                "ms")}
        for path in batch["path"]:
            t0 = time.perf_counter()
            try:
                result = self.pipeline.analyze(str(path))
                h, w = result.shape
                faces = [f.to_dict() for f in result.faces]
                row = (w, h, len(faces), json.dumps(faces), "")
            except MaskfaceError as exc:  # unreadable/corrupt input: recorded, not fatal
                row = (0, 0, 0, "[]", str(exc))
            except Exception as exc:  # noqa: BLE001 - one bad input must not stop millions
                log.exception("unexpected failure on %s", path)
                row = (0, 0, 0, "[]", f"{path}: internal error: {exc!r}")
            for key, value in zip(("width", "height", "n_faces", "faces", "error"), row):
                out[key].append(value)
            out["ms"].append(round((time.perf_counter() - t0) * 1e3, 2))
        cols = {k: np.asarray(batch[k]) for k in ("path", "size", "mtime_ns")}
        cols.update({
            "width": np.asarray(out["width"], np.int32),
            "height": np.asarray(out["height"], np.int32),
            "n_faces": np.asarray(out["n_faces"], np.int32),
            "faces": np.asarray(out["faces"], dtype=object),
            "error": np.asarray(out["error"], dtype=object),  # "" when it succeeded
            "ms": np.asarray(out["ms"], np.float32),
        })
        return cols


@dataclass
class BatchSummary:
    """What a run did (also written as ``summary-<run>.json``)."""

    run_id: str
    inputs: int = 0
    skipped: int = 0
    #: inputs that had failed before, processed again (counted again as processed or failed)
    retried: int = 0
    processed: int = 0
    failed: int = 0
    faces: int = 0
    wall_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    unusable_inputs: list[str] = field(default_factory=list)
    #: files in folder inputs passed over as neither image nor video, in one line
    passed_over: str | None = None
    mask_labels: dict[str, int] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.processed / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "wall_s": round(self.wall_s, 2),
                "images_per_s": round(self.images_per_s, 2)}


def _write_part(rows: dict[str, np.ndarray], folder: Path, name: str, fmt: str) -> Path:
    """One output file per batch, written under a temporary name and renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{fmt}"
    tmp = folder / f".{name}.{fmt}.tmp"
    n = len(rows["path"])
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({k: (v.tolist() if v.dtype == object else v) for k, v in rows.items()})
        pq.write_table(table, tmp)
    else:
        with open(tmp, "w") as f:
            for i in range(n):
                rec = {k: (v[i].item() if hasattr(v[i], "item") else v[i])
                       for k, v in rows.items()}
                rec["faces"] = json.loads(rec["faces"])
                f.write(json.dumps(rec) + "\n")
    os.replace(tmp, path)
    return path


def _init_ray(address: str | None, workers: int) -> None:
    """Start (or join) Ray with its console chatter down to errors: our bar and summary say
    what happened, and Ray Data's full logs still go to its session folder."""
    import logging

    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
    import ray.data  # noqa: F401  (configures the "ray.data" logger's handlers)

    for handler in logging.getLogger("ray.data").handlers:
        if type(handler).__name__ == "PlainRayHandler":  # the console one, not the file one
            handler.setLevel(logging.ERROR)


def run_batch(inputs: list[str], out: Path, *, ray_address: str | None = None,
              fmt: str = "parquet", batch_size: int = 16, workers: int | None = None,
              detector: str = "yunet", det_size: int | None = None,
              classifier: str | None = "default", progress: bool = True) -> BatchSummary:
    """Analyse every image of ``inputs`` not yet done in ``out``'s done-list (those that
    failed are tried again); return the summary."""
    from maskface.progress import progress as bar_of

    if fmt not in FORMATS:
        raise InputError(f"format '{fmt}' is not one of: {', '.join(FORMATS)}")
    require_extra("scale", "ray", *(["pyarrow"] if fmt == "parquet" else []),
                  doing="batch analysis")
    build_pipeline(detector, det_size, classifier)
    t0 = time.perf_counter()
    files, problems, passed_over = list_inputs(inputs)
    if not files:  # one line, before an output folder and an empty summary are written
        why = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
        raise InputError(f"no images found in: {', '.join(inputs)}"
                         + (f" ({why})" if why else "")
                         + (f" ({passed_over})" if passed_over else ""))
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out / "manifest.jsonl")
    todo = [f for f in files if f not in manifest]
    summary = BatchSummary(run_id=time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6],
                           inputs=len(files), skipped=len(files) - len(todo),
                           retried=sum(f.key in manifest.failed for f in todo),
                           unusable_inputs=problems, passed_over=passed_over)
    labels: Counter[str] = Counter()
    if todo:
        workers = workers or os.cpu_count() or 1
        _init_ray(ray_address, workers)
        with bar_of(total=len(todo), unit="img", desc="batch", show=progress) as bar:
            for k, rows in enumerate(_predict(todo, batch_size, workers, detector, det_size,
                                              classifier)):
                _write_part(rows, out / "results", f"part-{summary.run_id}-{k:06d}", fmt)
                done = []
                for i, path in enumerate(rows["path"]):
                    err = str(rows["error"][i]) or None
                    item = InputFile(str(path), int(rows["size"][i]), int(rows["mtime_ns"][i]))
                    done.append((item, err))
                    if err:
                        summary.failed += 1
                        summary.failures.append(str(err))
                    else:
                        summary.processed += 1
                        faces = json.loads(rows["faces"][i])
                        summary.faces += len(faces)
                        labels.update(f["mask"]["label"] for f in faces if f.get("mask"))
                manifest.add(done)
                bar.update(len(done))
    summary.mask_labels = dict(labels)
    summary.wall_s = time.perf_counter() - t0
    write_json(out / f"summary-{summary.run_id}.json", summary.to_dict(), indent=2)
    return summary


def _predict(todo: list[InputFile], batch_size: int, workers: int, detector: str,
             det_size: int | None, classifier: str | None) -> Iterator[dict[str, np.ndarray]]:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours is the tqdm bar over finished images
    ds = ray.data.from_items([asdict(f) for f in todo],
                             override_num_blocks=max(1, min(len(todo) // batch_size, 10_000)))
    ds = ds.map_batches(
        FacePredictor,
        fn_constructor_kwargs={"detector": detector, "det_size": det_size,
                               "classifier": classifier, "threads": 1},
        batch_size=batch_size, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers),
    )
    yield from ds.iter_batches(batch_size=None, batch_format="numpy")

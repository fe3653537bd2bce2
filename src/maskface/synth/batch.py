"""Mask a folder of face photos: same sub-folders out, a manifest CSV, deterministic per image.

Each image gets its own random generator seeded from the run's seed and the image's path
relative to the input folder, so the output of an image does not depend on the order, the
number of workers, or which other images are in the run: the same seed gives byte-identical
files.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import multiprocessing as mp
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from multiprocessing import util as mp_util
from pathlib import Path

import cv2
import numpy as np

from maskface.errors import ImageLoadError, InputError
from maskface.io.sources import image_files
from maskface.synth.apply import apply_mask
from maskface.synth.landmarks import DenseLandmarks, FaceLandmarker
from maskface.synth.styles import MASK_TYPES, MaskStyle, random_style

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
SKIPPED = "skipped.csv"
_KEEP_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class SynthConfig:
    """Options of a synthesis run (see ``maskface synth --help``)."""

    types: tuple[str, ...] = MASK_TYPES
    per_image: int = 1
    incorrect_rate: float = 0.0
    seed: int = 0
    templates: Path | None = None
    detector: str = "yunet"
    jpeg_quality: int = 95
    #: write ``with_mask/`` and ``mask_incorrect/`` class folders instead of the input's layout
    by_class: bool = False
    #: write the classifier's view of the face, the inference crop around the detector box
    #: (``classify.crop``), instead of the whole photo; with ``by_class`` also the bare face
    #: as ``without_mask/``, so every class of this source comes in the same framing
    face_crop: bool = False

    def __post_init__(self) -> None:
        bad = [t for t in self.types if t not in MASK_TYPES]
        if bad or not self.types:
            raise InputError(f"unknown mask type(s) {', '.join(bad) or '(none given)'}; "
                             f"choose from: {', '.join(MASK_TYPES)}")
        if self.per_image < 1:
            raise InputError("--per-image must be at least 1")
        if not 0.0 <= self.incorrect_rate <= 1.0:  # also false for NaN
            raise InputError(f"--incorrect-rate must be a number between 0 and 1, not "
                             f"{self.incorrect_rate}")


@dataclass
class ManifestRow:
    """One synthesised image."""

    source: str
    output: str  # relative to the output folder
    #: the source's folder relative to the input folder (the identity, for face datasets)
    identity: str
    mask_type: str
    colour: str
    pattern: str
    wear: str
    worn_correctly: bool
    style: str
    template: str
    yaw: float
    #: the face the mask was drawn on (detector box in the source image)
    x1: float
    y1: float
    x2: float
    y2: float
    #: the bare face written beside it with ``face_crop`` and ``by_class``, else empty
    unmasked: str = ""


@dataclass
class SynthSummary:
    inputs: int
    outputs: int
    rows: list[ManifestRow]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: images of an earlier run in the output folder deleted first (``remove_previous_run``)
    removed: int = 0

    @property
    def images_per_second(self) -> float:
        return (self.inputs - len(self.skipped)) / self.seconds if self.seconds > 0 else 0.0


def image_seed(seed: int, rel: str) -> int:
    """A 63-bit seed from the run seed and an image's relative path (stable across runs and
    platforms, unlike ``hash``)."""
    digest = hashlib.sha256(f"{seed}:{rel}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, sorted by relative path."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    return image_files(folder)


def output_bases(rels: Sequence[Path], per_image: int, flat: bool) -> list[Path]:
    """The output name of each source before ``output_name`` numbers and files it: ``rel``
    itself, or with ``flat`` its sub-folders joined into the name with ``_``; the suffix lower
    case (``.png`` if not JPEG or PNG). Names that would clash (``x.jpg`` and ``x.JPG``; flat
    ``a/b_c.jpg`` and ``a_b/c.jpg``) get ``-2``, ``-3``, ... on the later source in path order,
    so each source has files of its own, the same whatever the number of workers."""
    taken: set[str] = set()
    bases = []
    for rel in rels:
        suffix = rel.suffix.lower() if rel.suffix.lower() in _KEEP_SUFFIXES else ".png"
        stem = "_".join([*rel.parent.parts, rel.stem]) if flat else rel.stem
        folder = Path() if flat else rel.parent
        n = 1
        while True:
            base = folder / f"{stem}{f'-{n}' if n > 1 else ''}{suffix}"
            # Compared without case: on a case-insensitive file system X.jpg is x.jpg.
            names = {output_name(base, k, per_image).as_posix().lower()
                     for k in range(per_image)}
            if not names & taken:
                break
            n += 1
        taken |= names
        bases.append(base)
    return bases


def output_name(base: Path, k: int, per_image: int, label: str | None = None) -> Path:
    """Where the ``k``-th masked version of the source named ``base`` (``output_bases``)
    goes: ``base`` itself, numbered ``_k`` with ``per_image`` above 1, in the class folder
    ``label`` if given."""
    name = base.name if per_image == 1 else f"{base.stem}_{k}{base.suffix}"
    return Path(label or "") / base.with_name(name)


@dataclass(frozen=True)
class FoundFace:
    """The face a mask goes on: detector box (source pixels) and dense landmarks, which are in
    the pixels of the mirrored photo when ``mirrored``."""

    box: np.ndarray
    landmarks: DenseLandmarks
    mirrored: bool


class FaceMasker:
    """Finds the main face of an image and draws masks on it; one per worker process."""

    def __init__(self, config: SynthConfig):
        from maskface.detect import create_detector

        self.config = config
        self.detector = create_detector(config.detector)
        self.landmarker = FaceLandmarker()
        self.templates = None
        self.template_labels: dict[str, tuple[str, str]] | None = None
        if config.templates is not None:
            from maskface.synth.templates import TemplateSet

            self.templates = TemplateSet(config.templates)
            self.template_labels = self.templates.labels(config.types)
            if not self.template_labels:
                raise InputError(f"{config.templates}: no template of type "
                                 f"{', '.join(config.types)}")

    def find_face(self, image: np.ndarray) -> FoundFace | str:
        """The largest detected face and its dense landmarks, or why there is none."""
        h, w = image.shape[:2]
        detect_at = getattr(self.detector, "detect_at", None)
        if detect_at is not None:
            # Small face crops are found more reliably (and several times faster) at 2x than
            # at the detector's default size, which upscales a 160 px crop 4x; masked faces
            # are what suffers. Large photos are shrunk to 1024 px.
            target = float(np.clip(max(h, w) * 2, 320, 1024))
            det = detect_at(image, target / max(h, w))
        else:
            det = self.detector.detect(image)
        if len(det) == 0:
            return "no face detected"
        areas = (det.boxes[:, 2] - det.boxes[:, 0]) * (det.boxes[:, 3] - det.boxes[:, 1])
        box = det.boxes[int(np.argmax(areas))]
        lm = self.landmarker.landmarks(image, box)
        if lm is not None:
            return FoundFace(box, lm, mirrored=False)
        # FaceLandmarker's face detector is not mirror-symmetric: a third of the turned heads
        # it misses are found in the mirrored photo. The mask is then drawn on the mirror image.
        mbox = np.array([w - box[2], box[1], w - box[0], box[3]], np.float32)
        lm = self.landmarker.landmarks(cv2.flip(image, 1), mbox)
        if lm is not None:
            return FoundFace(box, lm, mirrored=True)
        return "landmarker found no face in the detected box"

    def process(self, src: Path, rel: Path, base: Path, out_dir: Path
                ) -> tuple[list[ManifestRow], str | None]:
        """Mask ``src`` (``rel`` in the input folder) ``per_image`` times into files named
        after ``base`` (``output_bases``) in ``out_dir``."""
        from maskface.io import load_image

        try:
            image = load_image(src)
        except ImageLoadError as exc:
            return [], exc.reason
        found = self.find_face(image)
        if isinstance(found, str):
            return [], found
        canvas = cv2.flip(image, 1) if found.mirrored else image
        cfg = self.config
        rng = np.random.default_rng(image_seed(cfg.seed, rel.as_posix()))
        rows = []
        for k in range(cfg.per_image):
            style = random_style(rng, cfg.types, cfg.incorrect_rate, self.template_labels)
            out = apply_mask(canvas, found.landmarks, style, templates=self.templates)
            if found.mirrored:
                out = cv2.flip(out, 1)
            label = None
            if cfg.by_class:
                label = "with_mask" if style.worn_correctly else "mask_incorrect"
            out_rel = output_name(base, k, cfg.per_image, label)
            _write(out_dir / out_rel, self._view(out, found.box), cfg.jpeg_quality)
            rows.append(_row(src, rel, out_rel, style, found))
        if cfg.face_crop and cfg.by_class:
            bare = output_name(base, 0, 1, "without_mask")
            _write(out_dir / bare, self._view(image, found.box), cfg.jpeg_quality)
            for row in rows:
                row.unmasked = bare.as_posix()
        return rows, None

    def _view(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The whole photo, or with ``face_crop`` the square the classifier sees at inference
        (``CROP_SCALE`` x the detector box, edges replicated), at the photo's resolution."""
        if not self.config.face_crop:
            return image
        from maskface.classify.crop import CROP_SCALE
        from maskface.geometry import crop_padded, square_crop_box

        return crop_padded(image, square_crop_box(np.asarray(box, np.float64), CROP_SCALE))

    def close(self) -> None:
        self.landmarker.close()


def _row(src: Path, rel: Path, out_rel: Path, style: MaskStyle, found: FoundFace
         ) -> ManifestRow:
    box = found.box
    # Yaw of the face in the source photo (a mirrored mesh turns the other way).
    yaw = -found.landmarks.yaw if found.mirrored else found.landmarks.yaw
    return ManifestRow(
        source=str(src.resolve()), output=out_rel.as_posix(), identity=rel.parent.as_posix(),
        mask_type=style.mask_type,
        colour=style.colour, pattern=style.pattern, wear=style.wear,
        worn_correctly=style.worn_correctly, style=style.name, template=style.template or "",
        yaw=round(yaw, 3), x1=round(float(box[0]), 1), y1=round(float(box[1]), 1),
        x2=round(float(box[2]), 1), y2=round(float(box[3]), 1))


def _write(path: Path, image: np.ndarray, quality: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(path.suffix, image, params)
    if not ok:
        raise OSError(f"cannot encode {path}")
    path.write_bytes(buf.tobytes())


# Worker-process state: one FaceMasker (detector + landmarker) per process.
_worker: FaceMasker | None = None


def _init_worker(config: SynthConfig) -> None:
    global _worker
    cv2.setNumThreads(1)  # the workers are the parallelism
    _worker = FaceMasker(config)
    # Release the landmarker while the worker's threads still run (MediaPipe's close needs them).
    mp_util.Finalize(_worker, _worker.close, exitpriority=10)


def _work(task: tuple[Path, Path, Path, Path]) -> tuple[str, list[ManifestRow], str | None]:
    if _worker is None:
        raise RuntimeError("synth worker used before _init_worker")
    rows, reason = _worker.process(*task)
    src = task[0]
    return str(src), rows, reason


def synthesize(in_dir: Path, out_dir: Path, config: SynthConfig, workers: int = 1,
               limit: int | None = None, progress: Callable[[int], Iterator] | None = None
               ) -> SynthSummary:
    """Mask every image under ``in_dir`` into ``out_dir``; write the manifest and the list of
    skipped images; return a summary. ``limit`` keeps an evenly spread subset of the images.
    ``progress`` wraps the result iterator (e.g. a tqdm bar)."""
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    files = list_images(in_dir)
    if not files:
        raise InputError(f"{in_dir}: no images found")
    if limit is not None and limit < len(files):
        idx = np.linspace(0, len(files) - 1, limit).round().astype(int)
        files = [files[i] for i in idx]
    if out_dir.resolve() == in_dir.resolve() or in_dir.resolve() in out_dir.resolve().parents:
        raise InputError("the output folder must not be inside the input folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_previous_run(out_dir, keep=files)
    rels = [f.relative_to(in_dir) for f in files]
    bases = output_bases(rels, config.per_image, config.by_class)
    tasks = [(f, rel, base, out_dir) for f, rel, base in zip(files, rels, bases, strict=True)]
    t0 = time.perf_counter()
    rows: list[ManifestRow] = []
    skipped: list[tuple[str, str]] = []
    wrap = progress or (lambda it, total: it)
    if workers <= 1:
        masker = FaceMasker(config)
        try:
            results = ((str(t[0]), *masker.process(*t)) for t in tasks)
            for src, r, reason in wrap(results, len(tasks)):
                rows.extend(r)
                if reason:
                    skipped.append((src, reason))
        finally:
            masker.close()
    else:
        # spawn, not fork: MediaPipe and onnxruntime keep native threads that fork would copy.
        ctx = mp.get_context("spawn")
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(config,))
        try:
            for src, r, reason in wrap(pool.imap(_work, tasks, chunksize=8), len(tasks)):
                rows.extend(r)
                if reason:
                    skipped.append((src, reason))
            pool.close()  # let workers exit cleanly, running their finalisers
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
    seconds = time.perf_counter() - t0
    write_manifest(out_dir / MANIFEST, rows)
    with open(out_dir / SKIPPED, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "reason"])
        w.writerows(skipped)
    return SynthSummary(len(files), len(rows), rows, skipped, seconds, removed)


def write_manifest(path: Path, rows: list[ManifestRow]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(ManifestRow)])
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))


def read_manifest(path: Path) -> list[ManifestRow]:
    """Rows of a manifest written by :func:`synthesize`."""
    if not path.is_file():
        raise InputError(f"{path}: no manifest (run maskface synth first)")
    names = [fl.name for fl in fields(ManifestRow)]
    required = [fl.name for fl in fields(ManifestRow) if fl.default is MISSING]
    out = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [n for n in required if n not in (reader.fieldnames or ())]
        if missing:
            raise InputError(f"{path}: not a manifest of maskface synth (no column "
                             f"{', '.join(missing)})")
        for d in reader:
            d = {k: v for k, v in d.items() if k in names}
            d["worn_correctly"] = d["worn_correctly"] == "True"
            try:
                for k in ("yaw", "x1", "y1", "x2", "y2"):
                    d[k] = float(d[k])
            except (TypeError, ValueError):
                raise InputError(f"{path}: line {reader.line_num}: {k} is not a number") from None
            out.append(ManifestRow(**d))
    return out


def remove_previous_run(out_dir: Path, keep: Iterable[Path] = ()) -> int:
    """Delete the images that the manifest of an earlier run in ``out_dir`` lists, and that
    manifest, so that a new run leaves none of them behind (a source also in its old class
    folder, the ``_1`` copies of ``--per-image 2``). Nothing else goes: no file the manifest
    does not list, outside ``out_dir``, or in ``keep`` (the new run's inputs). Returns how many
    images were deleted."""
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return 0
    root = out_dir.resolve()
    kept = {p.resolve() for p in keep}
    listed = {n for r in read_manifest(manifest) for n in (r.output, r.unmasked) if n}
    removed = 0
    for name in sorted(listed):
        path = out_dir / name
        real = path.resolve()
        if root not in real.parents or real in kept or not path.is_file():
            continue
        path.unlink()
        removed += 1
        # OUT is then as a fresh run leaves it: no empty mask_incorrect/ after a re-run with
        # --incorrect-rate 0 to suggest a class that has no images.
        folder = real.parent
        while folder != root and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    manifest.unlink()  # it names images that are gone; an interrupted run must not trust it
    return removed

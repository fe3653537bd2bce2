"""Scene datasets with ground-truth face boxes, for evaluating detect-then-classify.

Two layouts are read, both with the photos under ``images/``:

* **dataroots**: ``annotations.csv`` with columns ``image,label,x,y,w,h`` (top-left corner and
  size in pixels), labels ``with_mask`` / ``without_mask``.
* **PASCAL VOC**: ``annotations/*.xml``, one file per image, objects named ``with_mask``,
  ``without_mask`` or ``mask_weared_incorrect`` (mapped to ``mask_incorrect``) with a
  ``bndbox`` of ``xmin, ymin, xmax, ymax``.

Every image of ``images/`` is part of the dataset; one without annotations has no faces (a true
negative scene), so false detections on it still count. A dataset may come with fixed splits,
``splits/{train,val,test}.txt`` (one image name or stem per line): ``load_scenes(root, split)``
reads one of them.
"""

from __future__ import annotations

import csv
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maskface.errors import InputError
from maskface.io.image import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

#: ground-truth labels after normalisation, in the project's mask-label vocabulary
SCENE_LABELS = ("with_mask", "without_mask", "mask_incorrect")

#: spellings found in public datasets -> project label
_LABEL_ALIASES = {
    "with_mask": "with_mask",
    "without_mask": "without_mask",
    "mask_incorrect": "mask_incorrect",
    "mask_weared_incorrect": "mask_incorrect",
    "mask_worn_incorrectly": "mask_incorrect",
}

CSV_COLUMNS = ("image", "label", "x", "y", "w", "h")


@dataclass(frozen=True)
class SceneImage:
    """One photo and its true faces: ``boxes`` ``(N, 4)`` ``x1, y1, x2, y2`` in pixels, and one
    label from :data:`SCENE_LABELS` per box."""

    path: Path
    boxes: np.ndarray = field(repr=False)
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def name(self) -> str:
        return self.path.name


def normalise_label(raw: str, where: str) -> str:
    label = _LABEL_ALIASES.get(raw.strip().lower())
    if label is None:
        raise InputError(f"{where}: unknown label '{raw}' (expected one of "
                         f"{', '.join(sorted(_LABEL_ALIASES))})")
    return label


def detect_layout(root: Path) -> str:
    """``"dataroots"`` or ``"voc"``; raises :class:`InputError` for anything else."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: scenes folder not found")
    if not (root / "images").is_dir():
        raise InputError(f"{root}: expected an images/ folder beside annotations.csv or "
                         f"annotations/*.xml")
    if (root / "annotations.csv").is_file():
        return "dataroots"
    if (root / "annotations").is_dir() and any((root / "annotations").glob("*.xml")):
        return "voc"
    raise InputError(f"{root}: no annotations.csv (dataroots layout) and no annotations/*.xml "
                     f"(PASCAL VOC layout)")


def read_splits(root: str | Path) -> dict[str, str]:
    """Image stem -> split from ``splits/<split>.txt``; empty when the dataset has none."""
    out: dict[str, str] = {}
    folder = Path(root) / "splits"
    for path in sorted(folder.glob("*.txt")) if folder.is_dir() else ():
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                out[Path(line.strip()).stem] = path.stem
    return out


def load_scenes(root: str | Path, split: str | None = None) -> list[SceneImage]:
    """Read a scenes dataset in either layout, sorted by image name; with ``split``, only the
    images listed in ``splits/<split>.txt``."""
    root = Path(root)
    layout = detect_layout(root)
    scenes = read_dataroots(root) if layout == "dataroots" else read_voc(root)
    if split:
        splits = read_splits(root)
        if split not in set(splits.values()):
            have = ", ".join(sorted(set(splits.values()))) or "none"
            raise InputError(f"{root}: no split '{split}' (splits/*.txt found: {have})")
        scenes = [s for s in scenes if splits.get(s.path.stem) == split]
    log.info("%s: %d images, %d faces (%s layout)", root, len(scenes),
             sum(len(s) for s in scenes), layout)
    return scenes


def _image_files(images: Path) -> dict[str, Path]:
    files = {p.name: p for p in images.iterdir()
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
    if not files:
        raise InputError(f"{images}: no images")
    return files


def _box(x1: float, y1: float, x2: float, y2: float, where: str) -> list[float]:
    if not all(np.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        raise InputError(f"{where}: empty or invalid box ({x1}, {y1}, {x2}, {y2})")
    return [x1, y1, x2, y2]


def _assemble(files: dict[str, Path], per_image: dict[str, list[tuple[list[float], str]]]
              ) -> list[SceneImage]:
    scenes = []
    for name in sorted(files, key=_natural_key):
        items = per_image.get(name, [])
        boxes = np.array([b for b, _ in items], dtype=np.float64).reshape(-1, 4)
        scenes.append(SceneImage(files[name], boxes, tuple(lab for _, lab in items)))
    return scenes


def _natural_key(name: str) -> tuple:
    """Sort ``2.jpg`` before ``10.jpg``."""
    stem = Path(name).stem
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def read_dataroots(root: str | Path) -> list[SceneImage]:
    """The dataroots layout: ``images/`` + ``annotations.csv`` (``image,label,x,y,w,h``)."""
    root = Path(root)
    csv_path = root / "annotations.csv"
    files = _image_files(root / "images")
    per_image: dict[str, list[tuple[list[float], str]]] = {}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{csv_path}: missing column(s) {', '.join(missing)}; expected "
                             f"{','.join(CSV_COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            where = f"{csv_path}:{line}"
            name = (row["image"] or "").strip()
            if name not in files:
                raise InputError(f"{where}: image '{name}' not found in {root / 'images'}")
            try:
                x, y, w, h = (float(row[k]) for k in ("x", "y", "w", "h"))
            except (TypeError, ValueError):
                raise InputError(f"{where}: x, y, w, h must be numbers") from None
            box = _box(x, y, x + w, y + h, where)
            per_image.setdefault(name, []).append((box, normalise_label(row["label"], where)))
    return _assemble(files, per_image)


def _voc_objects(xml_path: Path) -> tuple[str | None, list[tuple[list[float], str]]]:
    try:
        tree = ET.parse(xml_path)
    except ET.ParseError as exc:
        raise InputError(f"{xml_path}: not valid XML ({exc})") from None
    ann = tree.getroot()
    filename = (ann.findtext("filename") or "").strip() or None
    try:  # the declared size, when there is one: a box wholly outside it is a broken label
        size = (float(ann.findtext("size/width") or 0), float(ann.findtext("size/height") or 0))
    except ValueError:
        size = (0.0, 0.0)
    items = []
    for k, obj in enumerate(ann.iter("object")):
        where = f"{xml_path} object {k + 1}"
        bb = obj.find("bndbox")
        if bb is None:
            raise InputError(f"{where}: no bndbox")
        try:
            coords = [float(bb.findtext(t) or "nan") for t in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise InputError(f"{where}: bndbox coordinates must be numbers") from None
        box = _box(*coords, where)
        if min(size) > 0 and (box[0] >= size[0] or box[1] >= size[1] or box[2] <= 0
                              or box[3] <= 0):
            raise InputError(f"{where}: box ({', '.join(f'{v:g}' for v in box)}) lies outside "
                             f"its {size[0]:g}x{size[1]:g} image")
        items.append((box, normalise_label(obj.findtext("name") or "", where)))
    return filename, items


def read_voc(root: str | Path) -> list[SceneImage]:
    """PASCAL VOC: ``images/`` + ``annotations/*.xml``.

    The image of an XML file is its ``<filename>``, or else the image with the XML's stem.
    Corner coordinates are used as given (continuous pixel edges).
    """
    root = Path(root)
    files = _image_files(root / "images")
    by_stem: dict[str, str] = {}
    for name in files:
        by_stem.setdefault(Path(name).stem, name)
    per_image: dict[str, list[tuple[list[float], str]]] = {}
    for xml_path in sorted((root / "annotations").glob("*.xml")):
        filename, items = _voc_objects(xml_path)
        name = filename if filename in files else by_stem.get(xml_path.stem)
        if name is None:
            raise InputError(f"{xml_path}: its image ({filename or xml_path.stem + '.*'}) is "
                             f"not in {root / 'images'}")
        per_image.setdefault(name, []).extend(items)
    return _assemble(files, per_image)


def count_faces(scenes: Iterable[SceneImage]) -> dict[str, int]:
    """Number of true faces per label."""
    counts = dict.fromkeys(SCENE_LABELS, 0)
    for s in scenes:
        for lab in s.labels:
            counts[lab] += 1
    return counts


def is_scenes_dataset(root: str | Path) -> bool:
    """Whether ``root`` is a scenes dataset (images/ + annotations) rather than crop folders."""
    try:
        detect_layout(root)
    except InputError:
        return False
    return True


__all__ = ["SCENE_LABELS", "SceneImage", "count_faces", "detect_layout", "is_scenes_dataset",
           "load_scenes", "read_dataroots", "read_splits", "read_voc"]

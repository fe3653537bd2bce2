"""Labelled face crops on disk: folder-per-class reading, near-duplicate grouping, fixed splits.

No torch here, so evaluation reuses the folder reader. The splits are the part that decides
whether a reported accuracy means anything:

* a folder tree that is already split (``.../train/...``, ``.../val/...``, ``.../test/...``)
  keeps its split;
* any other tree (e.g. ``mask-crops/real``) is split by a seeded shuffle of *groups* into
  train / val / test, where a group is a connected set of near-duplicate images (a 256-bit
  difference hash within :data:`NEAR_DUP_BITS`): re-crops and re-encodes of one photo always
  land in the same split;
* held-out images that are near-duplicates of a training image are dropped, and images that
  occur under two different labels are dropped everywhere.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from maskface.errors import InputError
from maskface.io.image import is_image_path
from maskface.io.sources import walk

#: folder names accepted for each class (lower case)
CLASS_ALIASES: dict[str, tuple[str, ...]] = {
    "with_mask": ("with_mask", "masked", "mask", "with-mask", "withmask"),
    "without_mask": ("without_mask", "not_masked", "no_mask", "unmasked", "without-mask",
                     "withoutmask", "nomask"),
    "mask_incorrect": ("mask_incorrect", "mask_weared_incorrect", "mask_worn_incorrectly",
                       "incorrect_mask", "incorrect"),
}
SPLITS = ("train", "val", "test")
#: Hamming distance (of 256 bits) under which two images count as the same photo. Measured on
#: mask-crops: pairs up to ~30 are re-crops/re-encodes of one photo, 30–48 a mix of those and
#: look-alike studio shots; grouping a few look-alikes together costs nothing.
NEAR_DUP_BITS = 40


@dataclass(frozen=True)
class Sample:
    """One labelled image: ``subset`` is its folder relative to the data root (e.g. ``real``,
    ``synthetic/train``); ``source`` the root's name plus the subset's first part."""

    path: str
    label: str
    subset: str
    source: str
    split: str = ""
    #: path relative to the data root: names the sample independently of where the data lives
    rel: str = ""


def canonical_class(name: str, classes: Sequence[str]) -> str | None:
    """The class a folder name stands for, if it is one of ``classes`` or an alias of one."""
    low = name.lower()
    for cls in classes:
        if low == cls.lower() or low in CLASS_ALIASES.get(cls, ()):
            return cls
    return None


def _split_of(parts: Iterable[str]) -> str:
    for p in parts:
        if p.lower() in SPLITS:
            return p.lower()
        if p.lower() in ("valid", "validation"):
            return "val"
    return ""


def read_class_folders(root: str | os.PathLike, classes: Sequence[str]) -> list[Sample]:
    """Every image under a folder named after a class (or an alias), searched recursively.

    ``root`` may itself be a class folder's parent (``real/``) or any ancestor
    (``mask-crops/``). Images in folders that name no class are ignored. Symlinked folders
    are followed (each real folder once).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"data folder not found: {root}")
    samples: list[Sample] = []
    for here, dirnames, _ in walk(root):
        cls = canonical_class(here.name, classes)
        if cls is None:
            continue
        dirnames.clear()  # everything below a class folder belongs to that class
        subset_path = here.parent.relative_to(root)
        subset = subset_path.as_posix() if subset_path.parts else "."
        first = subset_path.parts[0] if subset_path.parts else ""
        source = "/".join(p for p in (root.name, first) if p and _split_of([p]) == "")
        split = _split_of(subset_path.parts)
        for sub, _, files in walk(here):
            for f in files:
                p = sub / f
                if is_image_path(p):
                    samples.append(Sample(str(p), cls, subset, source or root.name, split,
                                          p.relative_to(root).as_posix()))
    return samples


#: true faces whose box is narrower or lower than this are left out of training (a 6-px face
#: says nothing about how a mask is worn); evaluation keeps every face
MIN_SCENE_FACE_PX = 10
#: source suffix of the scene faces cut tight at their box (``read_scene_crops(tight=True)``)
TIGHT_SUFFIX = "-tight"


def read_scene_crops(root: str | os.PathLike, classes: Sequence[str], cap: int,
                     tight: bool = False) -> tuple[list[Sample], dict[str, np.ndarray]]:
    """Face crops of a scenes dataset (:mod:`maskface.eval.scenes`) that has fixed splits.

    Each true box is cut with the inference crop's framing (``CROP_SCALE`` x its longer side,
    edges replicated, longest side at most ``cap``), so ``whole_image_crop`` of it is exactly
    what the classifier sees on that box at inference. The dataset's own split (by image, in
    ``splits/*.txt``) is kept; images in no split are left out. Returns the samples (path
    ``<image>#<k>``) and their crops.

    With ``tight``, each face is also cut exactly at its box (path ``<image>#<k>@tight``,
    source ``<name>-tight``, the same split): how face-crop datasets are made, which
    ``whole_image_crop`` then frames without the context below the chin that shows a mask
    pulled down."""
    from maskface.classify.crop import CROP_SCALE
    from maskface.eval.scenes import load_scenes, read_splits
    from maskface.geometry import crop_padded, short_sides, square_crop_box
    from maskface.io.image import load_image

    root = Path(root)
    splits = read_splits(root)
    if not splits:
        raise InputError(f"{root}: a scenes dataset used for training needs fixed splits "
                         "(splits/train.txt, val.txt, test.txt)")
    samples: list[Sample] = []
    crops: dict[str, np.ndarray] = {}
    for scene in load_scenes(root):
        split = splits.get(scene.path.stem)
        if split not in SPLITS or not len(scene):
            continue
        image = None
        sides = short_sides(scene.boxes)
        for k, (box, label) in enumerate(zip(scene.boxes, scene.labels)):
            cls = canonical_class(label, classes)
            if cls is None or sides[k] < MIN_SCENE_FACE_PX:
                continue
            image = load_image(scene.path) if image is None else image
            crop = crop_padded(image, square_crop_box(box, CROP_SCALE))
            if crop.shape[0] > cap:
                crop = cv2.resize(crop, (cap, cap), interpolation=cv2.INTER_AREA)
            key = f"{scene.path}#{k}"
            crops[key] = crop
            samples.append(Sample(key, cls, split, root.name, split, f"{scene.name}#{k}"))
            if tight:
                crop = crop_padded(image, box)
                f = cap / max(crop.shape[:2])
                if f < 1:
                    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * f)),
                                             max(1, round(crop.shape[0] * f))),
                                      interpolation=cv2.INTER_AREA)
                crops[f"{key}@tight"] = crop
                samples.append(Sample(f"{key}@tight", cls, split, root.name + TIGHT_SUFFIX, split,
                                      f"{scene.name}#{k}@tight"))
    return samples, crops


def dhash(image: np.ndarray, n: int = 16) -> np.ndarray:
    """Difference hash: ``n*n`` bits, robust to re-encoding, resizing and small shifts."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (n + 1, n), interpolation=cv2.INTER_AREA).astype(np.int16)
    return np.packbits((small[:, 1:] > small[:, :-1]).ravel())


def near_duplicate_groups(hashes: np.ndarray, max_bits: int = NEAR_DUP_BITS,
                          keys: Sequence[str | None] | None = None) -> np.ndarray:
    """Connected components of the near-duplicate graph: a group id per image. Images with the
    same non-empty ``keys`` entry (e.g. one identity) are joined as well."""
    n = len(hashes)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Blocks keep the distance matrix small for large sets.
    block = 2048
    for s in range(0, n, block):
        bits_a = np.unpackbits(hashes[s : s + block], axis=1).astype(np.float32)
        bits_b = np.unpackbits(hashes, axis=1).astype(np.float32)
        d = bits_a @ (1 - bits_b).T + (1 - bits_a) @ bits_b.T
        for i, j in zip(*np.nonzero(d <= max_bits)):
            a, b = find(s + int(i)), find(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    first: dict[str, int] = {}
    for i, key in enumerate(keys or ()):
        if key:
            a, b = find(first.setdefault(key, i)), find(i)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(n)])


def group_keys(samples: Sequence[Sample], pattern: str | None) -> list[str | None]:
    """Per sample not already split, ``source`` + the first group of ``pattern`` matched in the
    file name (e.g. ``^(n\\d+)_`` for VGGFace2 identities): one person never straddles splits."""
    if not pattern:
        return [None] * len(samples)
    rx = re.compile(pattern)
    keys: list[str | None] = []
    for s in samples:
        # Pre-split folders keep the split they came with (even if it mixes identities).
        m = None if s.split else rx.search(Path(s.path).name)
        keys.append(f"{s.source}:{m.group(1) if m.groups() else m.group(0)}" if m else None)
    return keys


def _group_rank(key: str, seed: int) -> str:
    # A hash of (seed, key) orders groups: the split of a group does not depend on which other
    # folders were loaded, so adding data never reshuffles the existing test set.
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


@dataclass
class SplitReport:
    """What :func:`assign_splits` did, for the training card."""

    counts: dict[str, dict[str, dict[str, int]]]
    groups: int
    grouped_images: int
    dropped_near_duplicates: int
    dropped_label_conflicts: int
    seed: int
    fractions: dict[str, float]
    group_pattern: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def assign_splits(samples: Sequence[Sample], hashes: np.ndarray, seed: int = 0,
                  val_frac: float = 0.10, test_frac: float = 0.15,
                  max_bits: int = NEAR_DUP_BITS, group_pattern: str | None = None
                  ) -> tuple[list[Sample], SplitReport]:
    """Give every sample a split (keeping pre-split folders) and drop leaking duplicates.

    ``group_pattern``: a regular expression on file names whose match (first group) names a
    group within a source, e.g. an identity, kept in one split."""
    groups = near_duplicate_groups(hashes, max_bits, group_keys(samples, group_pattern))
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[int(g)].append(i)
    # A group's key is its smallest root-relative name: the split does not depend on where
    # the data lives or how its path was spelled.
    key = {g: min(f"{samples[i].source}/{samples[i].rel or samples[i].path}" for i in idx)
           for g, idx in members.items()}
    conflicted = {g for g, idx in members.items()
                  if len({samples[i].label for i in idx}) > 1
                  and _identical_across_labels([samples[i] for i in idx], hashes[idx])}

    split = [s.split for s in samples]
    for g, idx in members.items():
        rank = int(_group_rank(key[g], seed)[:8], 16) / 0xFFFFFFFF
        fresh = "test" if rank < test_frac else "val" if rank < test_frac + val_frac else "train"
        for i in idx:
            if not split[i]:
                split[i] = fresh
    kept: list[Sample] = []
    dropped_dup = dropped_conflict = 0
    for g, idx in members.items():
        if g in conflicted:
            dropped_conflict += len(idx)
            continue
        in_train = any(split[i] == "train" for i in idx)
        for i in idx:
            # A pre-split held-out image that duplicates a training image would leak.
            if split[i] != "train" and in_train:
                dropped_dup += 1
                continue
            kept.append(replace(samples[i], split=split[i]))
    kept.sort(key=lambda s: s.path)
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for sp in SPLITS:
        by_src: dict[str, Counter] = defaultdict(Counter)
        for s in kept:
            if s.split == sp:
                by_src[s.source][s.label] += 1
        counts[sp] = {src: dict(sorted(c.items())) for src, c in sorted(by_src.items())}
    report = SplitReport(
        counts=counts,
        groups=len(members),
        grouped_images=sum(len(v) for v in members.values() if len(v) > 1),
        dropped_near_duplicates=dropped_dup,
        dropped_label_conflicts=dropped_conflict,
        seed=seed,
        fractions={"val": val_frac, "test": test_frac},
        group_pattern=group_pattern,
    )
    return kept, report


def _identical_across_labels(group: list[Sample], hashes: np.ndarray) -> bool:
    # Only exact pixel-hash twins under two labels are label noise; a masked and an unmasked
    # photo of one person merely look alike and stay (in the same split, as one group).
    by_label: dict[str, set[bytes]] = defaultdict(set)
    for s, h in zip(group, hashes):
        by_label[s.label].add(h.tobytes())
    sets = list(by_label.values())
    return any(a & b for i, a in enumerate(sets) for b in sets[i + 1 :])


def write_split_lists(samples: Sequence[Sample], out_dir: Path) -> dict[str, Path]:
    """One ``<split>.txt`` per split (``label<TAB>path`` lines) for reproducing results."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for sp in SPLITS:
        p = out_dir / f"{sp}.txt"
        p.write_text("".join(f"{s.label}\t{s.source}\t{s.path}\n" for s in samples
                             if s.split == sp))
        paths[sp] = p
    return paths


def read_split_list(path: str | os.PathLike, classes: Sequence[str] | None = None
                    ) -> list[Sample]:
    """Read a list written by :func:`write_split_lists` (or ``label<TAB>path`` lines)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file list not found: {path}")
    samples = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) not in (2, 3):
            raise InputError(f"{path}:{n}: expected 'label<TAB>[source<TAB>]path'")
        label, img = parts[0], parts[-1]
        source = parts[1] if len(parts) == 3 else path.stem
        if classes is not None and canonical_class(label, classes) is None:
            raise InputError(f"{path}:{n}: unknown label '{label}'")
        label = canonical_class(label, classes) if classes is not None else label
        samples.append(Sample(img, label, source, source, path.stem))
    return samples


"""Recognition training data: identity folders -> aligned crops, a fixed identity split, and
frozen-backbone features cached on disk. No torch here.

Identities, not photos, are split (seeded shuffle of the sorted identity names): ``holdout``
identities are never trained on (the identification evaluation uses them), ``val`` identities
choose the best epoch, the rest train.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskface.errors import InputError
from maskface.io.image import is_image_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentitySplit:
    train: list[str]
    val: list[str]
    holdout: list[str]
    seed: int

    def to_dict(self) -> dict:
        return {"seed": self.seed, "train": self.train, "val": self.val, "holdout": self.holdout}

    @classmethod
    def from_card(cls, card_path: str | Path) -> IdentitySplit:
        d = json.loads(Path(card_path).read_text())["split"]
        return cls(d["train"], d["val"], d["holdout"], int(d["seed"]))


def identity_photos(root: str | Path) -> dict[str, list[Path]]:
    """``<identity>/<photo>`` files, by sorted identity name."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: identity folder tree not found")
    out = {d.name: sorted(p for p in d.iterdir() if is_image_path(p))
           for d in sorted(root.iterdir()) if d.is_dir()}
    out = {k: v for k, v in out.items() if v}
    if len(out) < 2:
        raise InputError(f"{root}: needs at least two identity folders with photos")
    return out


def split_identities(names: list[str], holdout: int, val: int, seed: int = 0) -> IdentitySplit:
    """A fixed, seeded identity-disjoint split."""
    if holdout + val >= len(names):
        raise InputError(f"{len(names)} identities cannot hold out {holdout} + {val}")
    order = np.random.default_rng(seed).permutation(sorted(names))
    return IdentitySplit(sorted(order[holdout + val:].tolist()),
                         sorted(order[holdout:holdout + val].tolist()),
                         sorted(order[:holdout].tolist()), seed)


def masked_copies(masked_root: str | Path | None) -> dict[tuple[str, str], Path]:
    """Masked copy of each original photo, keyed by ``(identity, original stem)``.

    Reads ``manifest.csv`` (columns naming the source and output photo) when present, else
    matches files whose stem starts with the original's stem.
    """
    if masked_root is None:
        return {}
    root = Path(masked_root)
    if not root.is_dir():
        raise InputError(f"{root}: masked copies not found")
    out: dict[tuple[str, str], Path] = {}
    manifest = next(iter(sorted(root.glob("*.csv"))), None)
    if manifest is not None:
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f))
        src_col = next((c for c in ("source", "src", "original", "input") if rows and c in rows[0]),
                       None)
        dst_col = next((c for c in ("path", "output", "out", "masked", "file", "image")
                        if rows and c in rows[0]), None)
        if src_col and dst_col:
            for r in rows:
                src, dst = Path(r[src_col]), root / r[dst_col]
                if not dst.is_file():
                    dst = Path(r[dst_col])
                if dst.is_file():
                    out.setdefault((src.parent.name, src.stem), dst)
            if out:
                return out
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        for p in sorted(d.iterdir()):
            if is_image_path(p):
                stem = p.stem.split("__")[0].split("-mask")[0].split("_mask")[0]
                out.setdefault((d.name, stem), p)
    return out


def synth_mask_fn(seed: int):
    """``(image, face, key) -> masked image``: a random mask style (procedural or a
    MaskTheFace template when the shared templates are present), seeded by ``key``."""
    from maskface.eval.identify import default_data_root
    from maskface.synth import TemplateSet, apply_mask, random_style

    root = default_data_root() / "mask-templates" / "masktheface" / "templates"
    templates = TemplateSet(root) if (root / "masks.cfg").is_file() else None
    names = tuple(sorted(templates.templates)) if templates else ()

    def mask(image: np.ndarray, face, key: str) -> np.ndarray:
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        use_tpl = bool(names) and rng.random() < 0.4
        style = random_style(rng, templates=names if use_tpl else ())
        return apply_mask(image, face, style, templates=templates)

    return mask


def aligned_crop(detector, path: Path, fallback_landmarks: np.ndarray | None = None,
                 mask_fn=None) -> tuple[np.ndarray, np.ndarray, str]:
    """The aligned 112x112 crop of a photo's central face, its landmarks and how it was found.

    With ``mask_fn`` the face is masked first (``how`` is ``mask_failed`` when that cannot be
    done). A masked face the detector misses takes the original photo's landmarks
    (``fallback_landmarks``): the mask was drawn on the same geometry.
    """
    from maskface.align import align_face
    from maskface.errors import MaskfaceError
    from maskface.io import load_image
    from maskface.recognize.faces import central_face

    img = load_image(path)
    if mask_fn is not None:
        picked = central_face(detector, img)
        try:
            img = mask_fn(img, picked.face, f"{path.parent.name}/{path.name}")
        except MaskfaceError:
            return align_face(img, picked.face.landmarks), picked.face.landmarks, "mask_failed"
    picked = central_face(detector, img)
    lm, how = picked.face.landmarks, picked.how
    if how == "fallback" and fallback_landmarks is not None:
        lm, how = fallback_landmarks, "original_landmarks"
    return align_face(img, lm), np.asarray(lm, np.float32), how


def _cached(path: Path, make) -> dict[str, np.ndarray]:
    if path.is_file():
        return dict(np.load(path))
    data = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return data


def _key(*parts) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:10]


def build_crops(faces_root: str | Path, masked_root: str | Path | None, cache: Path,
                synth_seed: int = 0) -> dict[str, np.ndarray]:
    """Aligned crops of every photo and of its masked copy (cached under ``cache``).

    Masked copies come from ``masked_root`` (``maskface synth`` output) or, without one, are
    drawn here with :func:`maskface.synth.apply_mask`, one seeded random style per photo.

    Arrays: ``crops (M, 112, 112, 3)``, ``identity (M,)`` names, ``photo (M,)`` original stem,
    ``masked (M,)`` bool, ``how (M,)`` detection outcome. Unmasked and masked crops are cached
    separately, so new masked copies do not redo the originals.
    """
    from maskface.progress import progress
    from maskface.recognize.faces import portrait_detector

    photos = identity_photos(faces_root)
    det = portrait_detector()
    items = [(k, p) for k, ps in photos.items() for p in ps]

    def originals() -> dict[str, np.ndarray]:
        out = [aligned_crop(det, p) for _, p in progress(items, desc="align", unit="img",
                                                     mininterval=5)]
        return {"crops": np.stack([o[0] for o in out]),
                "landmarks": np.stack([o[1] for o in out]),
                "identity": np.array([k for k, _ in items]),
                "photo": np.array([p.stem for _, p in items]),
                "masked": np.zeros(len(items), bool),
                "how": np.array([o[2] for o in out])}

    root = Path(faces_root).resolve()
    base = _cached(Path(cache) / f"crops_{_key(root, len(items))}.npz", originals)
    if masked_root is not None:
        copies = masked_copies(masked_root)
        todo = [(i, copies[(k, p.stem)]) for i, (k, p) in enumerate(items)
                if (k, p.stem) in copies]
        tag = f"copies_{_key(Path(masked_root).resolve(), len(todo))}"
    else:  # draw the masks here, seeded per photo
        todo = [(i, p) for i, (_, p) in enumerate(items)]
        tag = f"synth_{_key(root, len(todo), synth_seed)}"
    mask_fn = None if masked_root is not None else synth_mask_fn(synth_seed)

    def masked() -> dict[str, np.ndarray]:
        out = [aligned_crop(det, mp, base["landmarks"][i], mask_fn)
               for i, mp in progress(todo, desc="align masked", unit="img", mininterval=5)]
        idx = np.array([i for i, _ in todo])
        return {"crops": np.stack([o[0] for o in out]),
                "landmarks": np.stack([o[1] for o in out]),
                "identity": base["identity"][idx], "photo": base["photo"][idx],
                "masked": np.ones(len(todo), bool), "how": np.array([o[2] for o in out])}

    extra = _cached(Path(cache) / f"crops_masked_{tag}.npz", masked)
    log.info("%d original and %d masked crops", len(base["crops"]), len(extra["crops"]))
    return {k: np.concatenate([base[k], extra[k]]) for k in base}


def without_failed_masks(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The crops of :func:`build_crops` less the "masked copies" the mask could not be drawn
    on (plain duplicates of their photo)."""
    keep = ~(data["masked"] & (data["how"] == "mask_failed"))
    return {k: v[keep] for k, v in data.items()}


def unmasked_rows(identity: np.ndarray, photo: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """For every row, the row of the same photo unmasked (itself for an unmasked row)."""
    orig = {(i, p): k for k, (i, p, m) in enumerate(zip(identity, photo, masked)) if not m}
    return np.array([orig[(i, p)] for i, p in zip(identity, photo)], dtype=np.int64)

"""``maskface train alignment``: where the landmarks of a masked face really are.

A detector guesses the nose and mouth corners of a masked face, and its eye points move too
(median 3-4 px on the 112-px crop, vggface2-sample with synthetic masks), so the aligned crop of
a masked face is off. Aligning the same masked crops on the *unmasked* photo's landmarks lifts
validation pair accuracy by 2-3 points (docs/recognition.md): the geometry, not the network,
costs that much.

What is fitted: a ridge regression from reid0095's last feature map (512x8x8, the fusion's
second backbone) of the masked face's aligned crop to the true landmarks in that crop's pixels
(the unmasked photo's landmarks, mapped by the crop's own alignment). Synthetic masks are drawn
on the unmasked photo's geometry, so the truth is exact. Closed form (dual ridge), seeded
identity split shared with ``train recognizer``; the penalty is chosen on the validation
identities by landmark error; exported as one ONNX graph (reid0095's layers up to that map,
then the linear map) with a card.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maskface.errors import InputError
from maskface.jsonfile import write_json

log = logging.getLogger(__name__)

MODEL_NAME = "masked_alignment"


@dataclass
class AlignmentConfig:
    out: Path = Path("runs/alignment")
    faces: Path | None = None
    cache: Path = Path("runs/recognizer/cache")
    holdout: int = 120
    val: int = 60
    seed: int = 0
    penalties: tuple[float, ...] = (1e4, 3e4, 1e5, 3e5, 1e6)


def _targets(data: dict[str, np.ndarray], source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the masked crops, and the true landmarks in each crop's pixels ``(M, 5, 2)``
    (``source``: each row's unmasked row, :func:`~maskface.train.recog_data.unmasked_rows`)."""
    from maskface.align import alignment_matrix

    rows = np.where(data["masked"])[0]
    truth = np.zeros((len(rows), 5, 2), np.float64)
    for j, k in enumerate(rows):
        a = alignment_matrix(data["landmarks"][k])  # image -> this crop
        truth[j] = data["landmarks"][source[k]] @ a[:, :2].T + a[:, 2]
    return rows, truth


def _pair_figures(data, source: np.ndarray, vm: np.ndarray, realigned: np.ndarray
                  ) -> dict[str, dict[str, float]]:
    """Validation pair accuracy (none/one/both masked) of ``sface_masked`` and ``reid0095`` with
    the masked crops ``vm`` as the detector aligned them and as re-aligned."""
    from maskface.recognize import create_embedder
    from maskface.train.recognizer import _pair_accuracy, _pairs

    vo = source[vm]
    ident = np.r_[data["identity"][vo], data["identity"][vm]]
    photo = np.r_[data["photo"][vo], data["photo"][vm]]
    masked = np.r_[np.zeros(len(vo), bool), np.ones(len(vm), bool)]
    pairs = _pairs(ident, photo, masked, np.random.default_rng(1))
    out = {}
    for name in ("sface_masked", "reid0095"):
        emb = create_embedder(name, realign=False)
        plain = emb.embed(data["crops"][vo], [False] * len(vo))
        for how, crops in (("detector", data["crops"][vm]), ("realigned", realigned)):
            e = np.r_[plain, emb.embed(crops, [True] * len(crops))]
            out[f"{name}_{how}"] = _pair_accuracy(e, pairs)
    return out


def fit(cfg: AlignmentConfig) -> dict[str, Any]:
    """Fit, choose the penalty on validation identities, export ONNX + card; returns the card."""
    from maskface.align import ARCFACE_TEMPLATE
    from maskface.eval.identify import default_data_root
    from maskface.recognize.realign import MaskedRealigner
    from maskface.train.recog_data import (
        build_crops,
        split_identities,
        unmasked_rows,
        without_failed_masks,
    )
    from maskface.train.recog_model import export_masked_alignment
    from maskface.train.recognizer import _features

    t0 = time.perf_counter()
    faces = cfg.faces or default_data_root() / "faces" / "vggface2-sample"
    cfg.out.mkdir(parents=True, exist_ok=True)
    data = without_failed_masks(build_crops(faces, None, cfg.cache, synth_seed=cfg.seed))
    if not data["masked"].any():
        raise InputError("no masked copies could be drawn: install the 'synth' extra")
    feats, _ = _features(data["crops"], cfg.cache, "reid0095")
    split = split_identities(sorted(set(data["identity"].tolist())), cfg.holdout, cfg.val,
                             cfg.seed)
    source = unmasked_rows(data["identity"], data["photo"], data["masked"])
    rows, truth = _targets(data, source)
    y = (truth - ARCFACE_TEMPLATE).reshape(len(rows), 10)
    ids = data["identity"][rows]
    tr, va = np.isin(ids, split.train), np.isin(ids, split.val)
    x_tr = np.asarray(feats[rows[tr]], np.float32)
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-3
    x_tr = (x_tr - mu) / sd
    x_va = (np.asarray(feats[rows[va]], np.float32) - mu) / sd
    y_mean = y[tr].mean(0)
    gram = x_tr.astype(np.float64) @ x_tr.T.astype(np.float64)
    rms = {"none": float(np.sqrt((y[va] ** 2).mean()))}
    best = None
    for lam in cfg.penalties:
        alpha = np.linalg.solve(gram + lam * np.eye(len(gram)), y[tr] - y_mean)
        w = x_tr.T @ alpha.astype(np.float32)
        err = float(np.sqrt(((x_va @ w + y_mean - y[va]) ** 2).mean()))
        rms[f"{lam:g}"] = err
        log.info("penalty %g: validation landmark RMS %.3f px", lam, err)
        if best is None or err < best[0]:
            best = (err, lam, w)
    err, lam, w = best
    # Fold the standardisation in: offsets = f @ (w / sd) + (y_mean - (mu / sd) @ w).
    w_f = (w / sd[:, None]).astype(np.float32)
    b_f = (y_mean - (mu / sd) @ w).astype(np.float32)
    path = export_masked_alignment(w_f, b_f, cfg.out / f"{MODEL_NAME}.onnx", {
        "embedder_name": MODEL_NAME, "penalty": f"{lam:g}", "seed": str(cfg.seed),
        "output": "landmark offsets from the ArcFace template, 112-px crop pixels (N, 10)"})
    realigner = MaskedRealigner(path)
    figures = _pair_figures(data, source, rows[va], realigner(data["crops"][rows[va]]))
    card: dict[str, Any] = {
        "model": MODEL_NAME,
        "description": "landmarks of a masked face's aligned crop, regressed (ridge) from "
                       "reid0095's last feature map; the crop is re-aligned on them",
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "data": {"faces": str(faces), "masked": "drawn by maskface.synth",
                 "train_crops": int(tr.sum()), "val_crops": int(va.sum())},
        "split": split.to_dict(),
        "penalty": lam,
        "val_landmark_rms_px": rms,
        "val_pair_accuracy": figures,
        "onnx": str(path),
        "onnx_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "fit_time_s": round(time.perf_counter() - t0, 1),
    }
    write_json(cfg.out / "card.json", card, indent=2)
    return card

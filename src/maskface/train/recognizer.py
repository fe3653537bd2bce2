"""``maskface train recognizer``: adapt SFace to masked faces without losing unmasked accuracy.

What is learned, and why it fits two CPU cores: SFace's backbone stays frozen and its features
(the 1024x7x7 map before the embedding layer) are computed once per photo and cached. The new
embedding is SFace's own plus a low-rank residual learned on top,

    e(f) = W0 f + b0 + U (V f)          (U: 128 x r, zero at the start; V: r x 50176)

so training starts exactly at SFace and the export is SFace's graph plus two small matrices.
Losses, on original photos and their synthetic masked copies:

* ArcFace (additive angular margin) logits with a focal loss, over the training identities;
* a batch-hard triplet loss on cosine distance (P identities x K photos per batch);
* distillation: every embedding (masked or not) is pulled to SFace's embedding of the *unmasked*
  photo. This keeps unmasked faces where SFace put them (no loss of unmasked accuracy, and
  galleries stay comparable) and teaches masked faces to land there too.

Seeded; Adam with a multi-step LR schedule; validation pair accuracy (none/one/both masked, on
held-out identities) after every epoch; the best epoch is exported to ONNX with a training card.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maskface.errors import InputError
from maskface.jsonfile import write_json

log = logging.getLogger(__name__)

MODEL_NAME = "sface_masked"


@dataclass
class TrainConfig:
    out: Path = Path("runs/recognizer")
    faces: Path | None = None
    masked: Path | None = None
    cache: Path = Path("runs/recognizer/cache")
    epochs: int = 20
    holdout: int = 120
    val: int = 60
    seed: int = 0
    rank: int = 64
    lr: float = 1e-3
    milestones: tuple[float, ...] = (0.6, 0.85)
    batch_ids: int = 32
    per_id: int = 8
    arc_scale: float = 32.0
    arc_margin: float = 0.3
    focal_gamma: float = 2.0
    w_arc: float = 1.0
    w_triplet: float = 1.0
    triplet_margin: float = 0.2
    w_distill: float = 4.0
    feature_dropout: float = 0.3
    #: train and validate the residual as it is deployed: on masked faces only (unmasked ones
    #: keep SFace's vectors); False applies it to every face
    gated: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _pairs(ident: np.ndarray, photo: np.ndarray, masked: np.ndarray, rng) -> dict[str, tuple]:
    """Validation pairs per mask mode: every same-identity pair of distinct photos, and as many
    different-identity pairs; indices into the arrays."""
    orig = {(i, p): k for k, (i, p, m) in enumerate(zip(ident, photo, masked)) if not m}
    mask = {(i, p): k for k, (i, p, m) in enumerate(zip(ident, photo, masked)) if m}
    keys = sorted(k for k in orig if k in mask)
    by_id: dict[str, list] = {}
    for k in keys:
        by_id.setdefault(k[0], []).append(k)
    same = [(a, b) for ks in by_id.values() for i, a in enumerate(ks) for b in ks[i + 1:]]
    diff = []
    while len(diff) < len(same):
        a, b = rng.choice(len(keys), 2, replace=False)
        if keys[a][0] != keys[b][0]:
            diff.append((keys[a], keys[b]))
    pairs = same + diff
    labels = np.r_[np.ones(len(same), bool), np.zeros(len(diff), bool)]
    out = {}
    for mode, (ma, mb) in {"none": (orig, orig), "one": (orig, mask), "both": (mask, mask)}.items():
        out[mode] = (np.array([ma[a] for a, _ in pairs]), np.array([mb[b] for _, b in pairs]),
                     labels)
    return out


def _pair_accuracy(emb: np.ndarray, pairs: dict[str, tuple]) -> dict[str, float]:
    from maskface.eval.verify import fold_accuracies

    res = {}
    for mode, (ia, ib, lab) in pairs.items():
        s = (emb[ia] * emb[ib]).sum(1)
        folds = np.arange(len(s)) % 5
        res[mode] = float(fold_accuracies(s, lab, folds)[0].mean())
    res["mean"] = float(np.mean([res[m] for m in ("none", "one", "both")]))
    return res


def _features(crops: np.ndarray, cache: Path, backbone: str = "sface"
              ) -> tuple[np.ndarray, np.ndarray]:
    """Cached backbone features and embeddings of the crops (``sface`` or ``reid0095``)."""
    from maskface.train.recog_model import extract_features, extract_reid_features

    key = hashlib.sha1(crops[:: max(1, len(crops) // 64)].tobytes()).hexdigest()[:10]
    prefix = "" if backbone == "sface" else f"{backbone}_"
    path = cache / f"{prefix}features_{len(crops)}_{key}.npy"
    epath = cache / f"{backbone}_{len(crops)}_{key}.npy"
    if path.is_file() and epath.is_file():
        return np.load(path, mmap_mode="r"), np.load(epath)
    feats, embs = (extract_features if backbone == "sface" else extract_reid_features)(crops)
    np.save(path, feats)
    np.save(epath, embs)
    return feats, embs


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train, select the best epoch on validation pairs, export ONNX + card; returns the card."""
    import torch
    import torch.nn.functional as F

    from maskface.eval.identify import default_data_root
    from maskface.recognize.base import l2_normalize
    from maskface.train.recog_data import (
        build_crops,
        split_identities,
        unmasked_rows,
        without_failed_masks,
    )
    from maskface.train.recog_model import FEATURE_DIM, export_adapted, sface_tail

    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = np.random.default_rng(cfg.seed)
    faces = cfg.faces or default_data_root() / "faces" / "vggface2-sample"
    cfg.cache.mkdir(parents=True, exist_ok=True)
    cfg.out.mkdir(parents=True, exist_ok=True)

    data = without_failed_masks(build_crops(faces, cfg.masked, cfg.cache, synth_seed=cfg.seed))
    feats, sface_raw = _features(data["crops"], cfg.cache)
    sface_emb = l2_normalize(sface_raw)
    ident, photo, masked = data["identity"], data["photo"], data["masked"]
    split = split_identities(sorted(set(ident.tolist())), cfg.holdout, cfg.val, cfg.seed)
    if not masked.any():
        raise InputError("no masked copies: pass --masked or install the 'synth' extra")

    # Distillation target: SFace's embedding of the unmasked photo, for every sample.
    target = sface_emb[unmasked_rows(ident, photo, masked)]

    train_ids = split.train
    cls = {name: c for c, name in enumerate(train_ids)}
    tr = np.array([k for k, i in enumerate(ident) if i in cls])
    va = np.array([k for k, i in enumerate(ident) if i in set(split.val)])
    y_all = np.array([cls.get(i, -1) for i in ident])
    val_pairs = _pairs(ident[va], photo[va], masked[va], np.random.default_rng(cfg.seed + 1))

    w0, b0 = sface_tail()
    U = torch.zeros(128, cfg.rank, requires_grad=True)
    V = (torch.randn(cfg.rank, FEATURE_DIM) / np.sqrt(FEATURE_DIM)).requires_grad_(True)
    # ArcFace class centres start at each identity's mean SFace embedding.
    centres = np.stack([l2_normalize(sface_emb[tr][y_all[tr] == c].mean(0)) for c in
                        range(len(train_ids))])
    Wc = torch.tensor(centres, requires_grad=True)
    opt = torch.optim.Adam([{"params": [U, V], "lr": cfg.lr},
                            {"params": [Wc], "lr": cfg.lr * 10}])
    steps_per_epoch = max(1, len(tr) // (cfg.batch_ids * cfg.per_id))
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, [int(m * cfg.epochs * steps_per_epoch) for m in cfg.milestones], gamma=0.1)

    base = torch.from_numpy(sface_raw)  # W0 f + b0, computed by the backbone pass already
    gate = torch.from_numpy(masked if cfg.gated else np.ones_like(masked)).float()[:, None]

    def embed(idx: np.ndarray, train_mode: bool = False) -> torch.Tensor:
        f = torch.from_numpy(np.asarray(feats[idx], np.float32))
        if train_mode and cfg.feature_dropout:
            f = F.dropout(f, cfg.feature_dropout)  # SFace itself trained with dropout here
        return base[idx] + gate[idx] * ((f @ V.T) @ U.T)

    def embed_all(idx: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate([F.normalize(embed(idx[i:i + 512]), dim=1).numpy()
                                   for i in range(0, len(idx), 512)])

    by_class = [tr[y_all[tr] == c] for c in range(len(train_ids))]
    base_val = _pair_accuracy(sface_emb[va], val_pairs)
    log.info("SFace on validation pairs: %s", base_val)
    history: list[dict[str, Any]] = [{"epoch": 0, "val": base_val}]
    best = {"epoch": 0, "score": base_val["mean"], "U": U.detach().clone(),
            "V": V.detach().clone()}
    cos_m, sin_m = np.cos(cfg.arc_margin), np.sin(cfg.arc_margin)
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        losses = {"arc": 0.0, "triplet": 0.0, "distill": 0.0}
        for _ in range(steps_per_epoch):
            ids = rng.choice(len(train_ids), cfg.batch_ids, replace=False)
            batch = np.sort(np.concatenate([rng.choice(by_class[c], cfg.per_id,
                                                       replace=len(by_class[c]) < cfg.per_id)
                                            for c in ids]))  # sorted: faster memmap reads
            e = F.normalize(embed(batch, True), dim=1)
            y = torch.from_numpy(y_all[batch])
            # ArcFace: cos(theta + m) for the true class, scaled; then a focal loss.
            cos = (e @ F.normalize(Wc, dim=1).T).clamp(-1 + 1e-6, 1 - 1e-6)
            sin = torch.sqrt(1 - cos**2)
            onehot = F.one_hot(y, len(train_ids)).bool()
            logits = cfg.arc_scale * torch.where(onehot, cos * cos_m - sin * sin_m, cos)
            logp = F.log_softmax(logits, 1)[onehot]
            arc = (-(1 - logp.exp()) ** cfg.focal_gamma * logp).mean()
            # Batch-hard triplet on cosine distance.
            d = 1 - e @ e.T
            same = y[:, None] == y[None, :]
            hard_pos = torch.where(same, d, torch.zeros_like(d)).max(1).values
            hard_neg = torch.where(same, torch.full_like(d, 4.0), d).min(1).values
            triplet = F.relu(hard_pos - hard_neg + cfg.triplet_margin).mean()
            distill = (1 - (e * torch.from_numpy(target[batch])).sum(1)).mean()
            loss = cfg.w_arc * arc + cfg.w_triplet * triplet + cfg.w_distill * distill
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            for k, v in (("arc", arc), ("triplet", triplet), ("distill", distill)):
                losses[k] += v.item() / steps_per_epoch
        val = _pair_accuracy(embed_all(va), val_pairs)
        history.append({"epoch": epoch, "val": val, "loss": losses,
                        "lr": sched.get_last_lr()[0], "time_s": time.perf_counter() - t0})
        log.info("epoch %d: loss %s val %s", epoch, losses, val)
        if val["mean"] > best["score"]:
            best = {"epoch": epoch, "score": val["mean"], "U": U.detach().clone(),
                    "V": V.detach().clone()}

    # Threshold for open-set use: best accuracy over all validation pairs of the best model.
    from maskface.eval.verify import best_threshold

    U_b, V_b = best["U"].numpy(), best["V"].numpy()
    w_new = w0 + U_b @ V_b
    emb_val = l2_normalize(np.asarray(feats[va], np.float32) @ w_new.T + b0)
    if cfg.gated:
        emb_val[~masked[va]] = sface_emb[va][~masked[va]]
    s = np.concatenate([(emb_val[a] * emb_val[b]).sum(1) for a, b, _ in val_pairs.values()])
    lab = np.concatenate([lbl for _, _, lbl in val_pairs.values()])
    threshold = best_threshold(s, lab)
    elapsed = time.perf_counter() - t_start
    card: dict[str, Any] = {
        "model": MODEL_NAME,
        "description": "SFace backbone (frozen) + low-rank residual embedding head adapted to "
                       "masked faces (ArcFace+focal, batch-hard triplet, distillation to SFace)",
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "data": {"faces": str(faces), "masked": str(cfg.masked or "drawn by maskface.synth"),
                 "photos": int((~masked).sum()), "masked_copies": int(masked.sum()),
                 "detection": {h: int((data["how"] == h).sum()) for h in set(data["how"])}},
        "split": split.to_dict(),
        "history": history,
        "best_epoch": best["epoch"],
        "val_pair_accuracy": history[best["epoch"]]["val"],
        "sface_val_pair_accuracy": base_val,
        "threshold": round(threshold, 4),
        "train_time_s": round(elapsed, 1),
    }
    if best["epoch"] == 0:
        log.warning("no epoch beat SFace on validation pairs; nothing exported")
    else:
        meta = {"embedder_name": MODEL_NAME, "embedding_dim": "128",
                "threshold": str(round(threshold, 4)), "input": "RGB 0..255 (N,3,112,112)",
                "best_epoch": str(best["epoch"]), "seed": str(cfg.seed)}
        onnx_path = export_adapted(U_b, V_b, cfg.out / f"{MODEL_NAME}.onnx", meta)
        card["onnx"] = str(onnx_path)
        card["onnx_sha256"] = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    write_json(cfg.out / "card.json", card, indent=2)
    return card

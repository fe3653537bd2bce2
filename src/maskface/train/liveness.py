"""Fine-tune the MiniFASNet liveness pair on a site's own frames, split by subject.

Data as for ``maskface eval liveness``: ``DATA/real/<subject>/`` and attack folders
(``DATA/print/<subject>/``...). Subjects (not frames) are split into train / validation / test,
so no person is in two splits. Faces come from our own detector (most confident face, the box
mapped as at inference), both crops are cut exactly as at inference, and both models are
fine-tuned from Minivision's weights (BatchNorm statistics frozen: few frames). The epoch with
the lowest validation loss is exported as one ONNX graph; the test subjects are scored once,
at the end, with the shipped threshold. Writes ``liveness.onnx`` and ``liveness.card.json``.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from maskface.errors import InputError
from maskface.jsonfile import write_json


@dataclass
class LivenessTrainConfig:
    data: str
    out: str
    weights: str  # folder with Minivision's two .pth files
    epochs: int = 3
    batch: int = 16
    lr: float = 1e-5
    val_frac: float = 0.2
    test_frac: float = 0.2
    detector: str = "yunet"
    seed: int = 0
    threads: int = 2


def split_subjects(subjects: list[str], val_frac: float, test_frac: float,
                   seed: int) -> dict[str, list[str]]:
    """Seeded subject split; each of validation and test gets at least one subject."""
    subs = sorted(subjects)
    if len(subs) < 3:
        raise InputError(f"need at least 3 subjects to split by subject, found {len(subs)}")
    random.Random(seed).shuffle(subs)
    n_test = max(1, round(len(subs) * test_frac))
    n_val = max(1, round(len(subs) * val_frac))
    if n_test + n_val >= len(subs):
        raise InputError(f"{len(subs)} subjects leave none for training with these fractions")
    return {"test": sorted(subs[:n_test]), "val": sorted(subs[n_test:n_test + n_val]),
            "train": sorted(subs[n_test + n_val:])}


def _crops(frames, detector_name: str):
    """Both inference crops of each frame's most confident face; frames without one are
    skipped (and counted)."""
    from maskface.detect import create_detector
    from maskface.io.image import load_image
    from maskface.liveness.crop import REFERENCE_FROM, liveness_crops
    from maskface.progress import progress

    det = create_detector(detector_name)
    mapping = REFERENCE_FROM[det.name]
    a, b, y, subj, skipped = [], [], [], [], 0
    for fr in progress(frames, desc="crops", unit="frame", leave=False):
        img = load_image(fr.path)
        d = det.detect(img)
        if not len(d):
            skipped += 1
            continue
        i = int(np.argmax(d.scores))
        c27, c40 = liveness_crops(img, d.boxes[i:i + 1], mapping)
        a.append(c27[0])
        b.append(c40[0])
        y.append(1 if fr.bona_fide else 0)  # class 1 = live; 0 = a spoof class
        subj.append(fr.subject)
    return np.stack(a), np.stack(b), np.array(y), np.array(subj), skipped


def train_liveness(cfg: LivenessTrainConfig) -> dict:
    import torch

    from maskface.eval.liveness import list_frames, rates
    from maskface.eval.metrics import roc_auc
    from maskface.liveness import DEFAULT_THRESHOLD
    from maskface.train.minifasnet import LivenessPair, export_onnx, load_minifasnet

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = list_frames(cfg.data)
    split = split_subjects(list({f.subject for f in frames}), cfg.val_frac, cfg.test_frac,
                           cfg.seed)
    a, b, y, subj, skipped = _crops(frames, cfg.detector)
    part = {k: np.isin(subj, v) for k, v in split.items()}
    w = Path(cfg.weights)
    pair = LivenessPair(load_minifasnet(w / "2.7_80x80_MiniFASNetV2.pth", "MiniFASNetV2"),
                        load_minifasnet(w / "4_0_0_80x80_MiniFASNetV1SE.pth", "MiniFASNetV1SE"))
    opt = torch.optim.Adam(pair.parameters(), lr=cfg.lr)
    nll = torch.nn.NLLLoss()

    def probs(m, bs=64):
        pair.eval()
        with torch.no_grad():
            return np.concatenate([pair(torch.from_numpy(a[m][i:i + bs]),
                                        torch.from_numpy(b[m][i:i + bs])).numpy()
                                   for i in range(0, int(m.sum()), bs)])

    def val_loss() -> float:
        p = probs(part["val"])
        return float(-np.log(np.clip(p[np.arange(len(p)), y[part["val"]]], 1e-7, 1)).mean())

    history = [{"epoch": 0, "val_loss": val_loss()}]
    best, best_state = history[0]["val_loss"], {k: v.clone() for k, v in
                                                pair.state_dict().items()}
    idx = np.nonzero(part["train"])[0]
    rng = np.random.default_rng(cfg.seed)
    t0 = time.time()
    for epoch in range(1, cfg.epochs + 1):
        pair.train()
        for mod in pair.modules():  # few frames: keep the pretrained BatchNorm statistics
            if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                mod.eval()
        rng.shuffle(idx)
        losses = []
        for s in range(0, len(idx), cfg.batch):
            j = idx[s:s + cfg.batch]
            xa, xb = torch.from_numpy(a[j]), torch.from_numpy(b[j])
            flip = torch.from_numpy(rng.random(len(j)) < 0.5)
            xa[flip], xb[flip] = xa[flip].flip(-1), xb[flip].flip(-1)
            p = pair(xa, xb)
            loss = nll(torch.log(p.clamp_min(1e-7)), torch.from_numpy(y[j]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        vl = val_loss()
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": vl})
        if vl < best:
            best, best_state = vl, {k: v.clone() for k, v in pair.state_dict().items()}
    pair.load_state_dict(best_state)
    onnx_path = out / "liveness.onnx"
    err = export_onnx(pair, onnx_path)
    # The test subjects, once, at the shipped threshold (through the exported graph's twin).
    p = probs(part["test"])[:, 1]
    yt = y[part["test"]].astype(bool)
    kinds = np.where(yt, "real", "attack")
    test = rates(p, yt, kinds, DEFAULT_THRESHOLD)
    test["roc_auc"] = roc_auc(p, yt) if yt.any() and (~yt).any() else None
    from maskface.models import sha256_file

    card = {"model": "MiniFASNetV2 + MiniFASNetV1SE fine-tuned by maskface train liveness",
            "base": "Minivision Silent-Face-Anti-Spoofing (Apache-2.0, Copyright 2020 "
                    "Minivision)",
            "config": asdict(cfg), "split": split,
            "frames": {k: int(v.sum()) for k, v in part.items()}, "frames_without_face": skipped,
            "history": history, "best_val_loss": best, "onnx_max_abs_diff": err,
            "sha256": sha256_file(onnx_path),
            "test_at_threshold": test, "threshold": DEFAULT_THRESHOLD,
            "time_s": round(time.time() - t0, 1)}
    write_json(out / "liveness.card.json", card, indent=1)
    return card

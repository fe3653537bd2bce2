"""Fine-tune ImageNet MobileNetV2 into the mask classifier and export it to ONNX.

Recipe: a fixed, seeded, near-duplicate-aware split (see :mod:`maskface.train.data`); the
head alone for ``freeze_epochs`` (backbone frozen, BatchNorm statistics untouched), then the
whole network with AdamW and a cosine schedule; class-and-source balanced sampling; label
smoothing; the checkpoint with the best validation accuracy (mean over data sources, so the
real photos count as much as the more numerous synthetic ones; ties broken by validation
log-loss) is exported with its
normalisation inside the ONNX graph, checked against torch, and described by a training card.
"""

from __future__ import annotations

import copy
import json
import logging
import platform
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from maskface.classify.crop import CROP_SCALE, whole_image_crop
from maskface.errors import InputError
from maskface.eval.metrics import classification_report
from maskface.io.image import decode_image
from maskface.jsonfile import write_json
from maskface.machine import cpu_name
from maskface.models import sha256_file
from maskface.progress import progress as bar
from maskface.train.augment import PRESETS, augment
from maskface.train.data import (
    TIGHT_SUFFIX,
    Sample,
    SplitReport,
    assign_splits,
    dhash,
    read_class_folders,
    read_scene_crops,
    write_split_lists,
)

log = logging.getLogger(__name__)

DEFAULT_CLASSES = ("with_mask", "without_mask")


@dataclass
class TrainConfig:
    """Everything that determines a training run (recorded in the card)."""

    data: list[str]
    out: str
    classes: tuple[str, ...] = DEFAULT_CLASSES
    epochs: int = 8
    freeze_epochs: int = 1
    size: int = 96
    batch: int = 32
    lr: float = 5e-4
    head_lr: float = 3e-3
    weight_decay: float = 0.02
    label_smoothing: float = 0.1
    #: training images drawn per epoch (class/source balanced, no repeats); 0 = all
    samples_per_epoch: int = 0
    #: leading MobileNetV2 feature blocks kept frozen while fine-tuning (speed on CPU; the
    #: first blocks are generic edge/colour filters)
    frozen_blocks: int = 4
    val_frac: float = 0.10
    test_frac: float = 0.15
    #: regex on file names naming a group (e.g. identity) kept within one split
    group_pattern: str | None = None
    seed: int = 0
    threads: int = 2
    opset: int = 17
    #: augmentation preset, a key of :data:`maskface.train.augment.PRESETS`
    augment: str = "base"
    #: start from a shipped classifier (registered name or ONNX file) instead of ImageNet;
    #: with ``frozen_blocks`` its first blocks stay exactly as they are, so the new network
    #: and the old one can share them in one graph (:func:`export_shared`)
    init: str | None = None
    #: also write ``shared_int8.onnx``: the shared graph with its three-class branch in int8
    #: (:mod:`maskface.train.quantize`), its rule swept again on validation
    int8_branch: bool = False
    #: also train on every scenes face cut exactly at its true box (a source of its own),
    #: how face-crop datasets are made (:func:`maskface.train.data.read_scene_crops`)
    tight_crops: bool = False


@dataclass
class LoadedData:
    samples: list[Sample]
    images: dict[str, np.ndarray] = field(repr=False)
    split: SplitReport


def load_data(cfg: TrainConfig, progress: bool = True) -> LoadedData:
    """Read every class folder under the data roots, decode, hash and split."""
    from maskface.eval.scenes import is_scenes_dataset

    found: list[Sample] = []
    scene_samples: list[Sample] = []
    scene_crops: dict[str, np.ndarray] = {}
    for root in cfg.data:
        if is_scenes_dataset(root):
            got, crops = read_scene_crops(root, cfg.classes, 2 * cfg.size, cfg.tight_crops)
            if not got:
                raise InputError(f"{root}: no faces labelled {', '.join(cfg.classes)}")
            scene_samples += got
            scene_crops.update(crops)
            continue
        got = read_class_folders(root, cfg.classes)
        if not got:
            raise InputError(f"{root}: no images in folders named {', '.join(cfg.classes)} "
                             "(or their aliases)")
        found += got
    images: dict[str, np.ndarray] = {}
    hashes = []
    kept = []
    for s in bar(found, desc="load", unit="img", show=progress, leave=False):
        try:
            img = decode_image(Path(s.path).read_bytes(), s.path)
        except Exception as exc:  # one unreadable file must not stop a training run
            log.warning("skipping %s: %s", s.path, exc)
            continue
        # Keep memory bounded: the crops are resized to a few hundred pixels at most anyway.
        h, w = img.shape[:2]
        cap = 2 * cfg.size
        if max(h, w) > cap:
            f = cap / max(h, w)
            import cv2

            img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))),
                             interpolation=cv2.INTER_AREA)
        images[s.path] = img
        hashes.append(dhash(img))
        kept.append(s)
    samples, report = assign_splits(kept, np.array(hashes).reshape(-1, 32), cfg.seed,
                                    cfg.val_frac, cfg.test_frac,
                                    group_pattern=cfg.group_pattern)
    # Scene faces keep their dataset's split (by image, look-alike frames together); many are
    # small and blurred, so hashing them would join unrelated faces into groups.
    for s in scene_samples:
        cell = report.counts[s.split].setdefault(s.source, {})
        cell[s.label] = cell.get(s.label, 0) + 1
    images.update(scene_crops)
    samples = sorted(samples + scene_samples, key=lambda s: s.path)
    return LoadedData(samples, {s.path: images[s.path] for s in samples}, report)


def balanced_indices(train: Sequence[Sample], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct training indices: every class equally likely, and within a class every
    source (real photos, each synthetic set) equally likely. Balancing (source, class) cells
    instead would favour a class that more sources provide (measured: a three-class run
    where three sources gave ``with_mask`` called 15 of 278 unmasked dataroots faces masked)."""
    cells = Counter((s.source, s.label) for s in train)
    sources_per_label = Counter(label for _, label in cells)
    w = np.array([1.0 / (cells[(s.source, s.label)] * sources_per_label[s.label])
                  for s in train])
    n = min(n or len(train), len(train))
    return rng.choice(len(train), size=n, replace=False, p=w / w.sum())


def _eval_crops(samples: Sequence[Sample], images: dict[str, np.ndarray], size: int
                ) -> np.ndarray:
    return np.stack([whole_image_crop(images[s.path], size) for s in samples])


def _batches(n: int, batch: int):
    for i in range(0, n, batch):
        yield slice(i, min(n, i + batch))


class Trainer:
    """Runs one training configuration end to end; see :func:`train_classifier`."""

    def __init__(self, cfg: TrainConfig, progress: bool = True):
        import cv2
        import torch

        from maskface.train.mobilenet import DeployModel, mobilenet_v2

        cv2.setNumThreads(1)  # augmentation runs beside torch's threads; do not oversubscribe
        self.cfg = cfg
        self.progress = progress
        self.torch = torch
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        if cfg.init:
            path, init = init_classifier(cfg.init)
            if init.input_size != cfg.size:
                raise InputError(f"--init {cfg.init} takes {init.input_size}-px crops; train at "
                                 f"--size {init.input_size} so both networks see the same crop")
            net = load_network(path, len(cfg.classes))
        else:
            net = mobilenet_v2(len(cfg.classes))
        self.model = DeployModel(net).to(memory_format=torch.channels_last)
        self.class_index = {c: i for i, c in enumerate(cfg.classes)}

    # -- batches ---------------------------------------------------------------------------
    def _train_batch(self, samples: Sequence[Sample], images, epoch: int, k: int,
                     ids: np.ndarray):
        cfg = self.cfg
        # One generator per batch, keyed by (seed, epoch, batch): the views do not depend on
        # the prefetch thread's timing.
        rng = np.random.default_rng([cfg.seed, epoch, k])
        aug = PRESETS[cfg.augment]
        x = np.stack([augment(images[samples[i].path], cfg.size, rng, aug) for i in ids])
        y = np.array([self.class_index[samples[i].label] for i in ids])
        return x, y

    def _tensor(self, x: np.ndarray):
        t = self.torch.from_numpy(x).permute(0, 3, 1, 2).float()
        return t.contiguous(memory_format=self.torch.channels_last)

    def predict(self, crops: np.ndarray, batch: int = 64) -> np.ndarray:
        """Softmax probabilities for BGR uint8 crops ``(N, S, S, 3)``."""
        torch = self.torch
        self.model.eval()
        out = []
        with torch.inference_mode():
            for sl in _batches(len(crops), batch):
                out.append(self.model(self._tensor(crops[sl])).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.cfg.classes)))

    def evaluate(self, samples: Sequence[Sample], crops: np.ndarray) -> dict:
        """Classification report overall and per data source."""
        probs = self.predict(crops)
        y = np.array([self.class_index[s.label] for s in samples])
        nll = -np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))
        rep = {"all": classification_report(probs, y, self.cfg.classes)}
        rep["all"]["nll"] = float(nll.mean())
        for src in sorted({s.source for s in samples}):
            m = np.array([s.source == src for s in samples])
            rep[src] = classification_report(probs[m], y[m], self.cfg.classes)
            rep[src]["nll"] = float(nll[m].mean())
        return rep

    # -- training --------------------------------------------------------------------------
    def _set_phase(self, head_only: bool):
        net = self.model.net
        for p in net.parameters():
            p.requires_grad_(True)
        frozen = net.features if head_only else net.features[: self.cfg.frozen_blocks]
        for p in frozen.parameters():
            p.requires_grad_(False)
        return frozen

    def fit(self, data: LoadedData) -> dict:
        torch = self.torch
        cfg = self.cfg
        train = [s for s in data.samples if s.split == "train"]
        val = [s for s in data.samples if s.split == "val"]
        if not train or not val:
            raise InputError("training needs images in both the train and val splits")
        val_crops = _eval_crops(val, data.images, cfg.size)
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        n_per_epoch = min(cfg.samples_per_epoch or len(train), len(train))
        steps_per_epoch = -(-n_per_epoch // cfg.batch)
        tune_steps = max(1, (cfg.epochs - cfg.freeze_epochs) * steps_per_epoch)
        history: list[dict] = []
        best: dict = {"score": -1.0}
        opt = sched = None
        pool = ThreadPoolExecutor(1)
        try:
            for epoch in range(cfg.epochs):
                head_only = epoch < cfg.freeze_epochs
                if epoch == 0 or epoch == cfg.freeze_epochs:
                    frozen = self._set_phase(head_only)
                    params = [p for p in self.model.parameters() if p.requires_grad]
                    lr = cfg.head_lr if head_only else cfg.lr
                    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
                    sched = None if head_only else torch.optim.lr_scheduler.OneCycleLR(
                        opt, max_lr=lr, total_steps=tune_steps, pct_start=0.1,
                        anneal_strategy="cos")
                t0 = time.perf_counter()
                ids = balanced_indices(train, n_per_epoch,
                                       np.random.default_rng([cfg.seed, epoch, 1 << 20]))
                self.model.train()
                frozen.eval()  # frozen blocks keep their ImageNet BatchNorm statistics
                if cfg.init:
                    # A shipped model's BatchNorms are folded (identity statistics): batch
                    # statistics would rescale every layer it learnt; only their shifts train.
                    for m in self.model.modules():
                        if isinstance(m, torch.nn.BatchNorm2d):
                            m.eval()
                chunks = [ids[sl] for sl in _batches(len(ids), cfg.batch)]
                pending = pool.submit(self._train_batch, train, data.images, epoch, 0,
                                      chunks[0])
                tot_loss = tot_ok = seen = 0.0
                batches = bar(range(len(chunks)), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                              unit="batch", show=self.progress, leave=False)
                for k in batches:
                    x, y = pending.result()
                    if k + 1 < len(chunks):
                        pending = pool.submit(self._train_batch, train, data.images, epoch,
                                              k + 1, chunks[k + 1])
                    logits = self.model.logits(self._tensor(x))
                    yt = torch.from_numpy(y)
                    loss = loss_fn(logits, yt)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    tot_loss += loss.item() * len(y)
                    tot_ok += float((logits.argmax(1) == yt).sum())
                    seen += len(y)
                    batches.set_postfix(loss=f"{tot_loss / seen:.3f}", acc=f"{tot_ok / seen:.3f}")
                train_s = time.perf_counter() - t0
                rep = self.evaluate(val, val_crops)
                sources = [k for k in rep if k != "all"]
                score = float(np.mean([rep[s]["accuracy"] for s in sources]))
                # Ties (a saturated validation set) go to the more confident model.
                val_nll = float(np.mean([rep[s]["nll"] for s in sources]))
                row = {"epoch": epoch + 1, "phase": "head" if head_only else "finetune",
                       "train_loss": tot_loss / seen, "train_acc": tot_ok / seen,
                       "val_score": score, "val_nll": val_nll,
                       "val_acc": {s: rep[s]["accuracy"] for s in rep},
                       "train_s": round(train_s, 1),
                       "epoch_s": round(time.perf_counter() - t0, 1)}
                history.append(row)
                accs = ", ".join(f"{s} {rep[s]['accuracy']:.4f}" for s in rep)
                msg = (f"epoch {epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.4f} "
                       f"val {accs} ({row['epoch_s']:.0f} s)")
                if self.progress:
                    from tqdm import tqdm

                    tqdm.write(msg)  # through the epoch bar, not across it
                log.info(msg)
                if (score, -val_nll) > (best["score"], -best.get("nll", np.inf)):
                    best = {"score": score, "nll": val_nll, "epoch": epoch + 1,
                            "state": copy.deepcopy(self.model.state_dict())}
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        self.model.load_state_dict(best["state"])
        return {"history": history, "best_epoch": best["epoch"], "best_val_score": best["score"]}

    # -- export ----------------------------------------------------------------------------
    def export_onnx(self, path: Path, check_crops: np.ndarray) -> float:
        """Write the ONNX model (normalisation and softmax inside, dynamic batch, metadata)
        and return the max abs difference to torch on ``check_crops``."""


        torch = self.torch
        cfg = self.cfg
        model = copy.deepcopy(self.model).to(memory_format=torch.contiguous_format).eval()
        write_onnx(model, path, ["probs"], cfg, {"labels": json.dumps(list(cfg.classes))})
        got = onnx_outputs(path, check_crops)[0]
        want = self.predict(check_crops)
        return float(np.abs(got - want).max())

    def export_shared(self, path: Path, check_crops: np.ndarray) -> float:
        """Write the ``init`` classifier and this one as one graph sharing their frozen blocks
        (outputs ``probs``: the init model's, ``branch_probs``: this one's) and return the
        max abs difference of both outputs to the two models run apart."""
        from maskface.train.mobilenet import DeployModel, SharedPair

        cfg = self.cfg
        torch = self.torch
        first_path, init = init_classifier(cfg.init)
        first_labels = list(init.labels)
        first = DeployModel(load_network(first_path, len(first_labels))).eval()
        second = copy.deepcopy(self.model).to(memory_format=torch.contiguous_format).eval()
        for a, b in zip(first.net.features[: cfg.frozen_blocks].state_dict().values(),
                        second.net.features[: cfg.frozen_blocks].state_dict().values()):
            if not torch.equal(a, b):
                raise RuntimeError("the frozen blocks changed during training")
        pair = SharedPair(first, second, cfg.frozen_blocks).eval()
        write_onnx(pair, path, ["probs", "branch_probs"], cfg,
                   {"labels": json.dumps(first_labels),
                    "branch_labels": json.dumps(list(cfg.classes)),
                    "shared_blocks": str(cfg.frozen_blocks),
                    "output": "softmax probabilities (N,C) of the init model (probs) and of "
                              "the branch trained on its frozen blocks (branch_probs)"})
        got = onnx_outputs(path, check_crops)
        want = [onnx_outputs(first_path, check_crops)[0], self.predict(check_crops)]
        return max(float(np.abs(g - w).max()) for g, w in zip(got, want))


def init_classifier(init: str):
    """``--init``'s ONNX file (a registered model name or a file) and the classifier it is
    (labels, input size), read by the one classifier loader."""
    from maskface.classify import MaskClassifier
    from maskface.models import model_path

    p = Path(init)
    if p.suffix == ".onnx" and not p.is_file():
        raise InputError(f"--init {init}: no such file")
    path = p if p.suffix == ".onnx" else model_path(init)
    return path, MaskClassifier(path)


def load_network(path: Path, num_classes: int):
    """The torch MobileNetV2 of a shipped classifier file (a user error if it is not one)."""
    from maskface.train.mobilenet import mobilenet_from_classifier

    try:
        return mobilenet_from_classifier(path, num_classes)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def write_onnx(model, path: Path, outputs: list[str], cfg: TrainConfig, meta: dict) -> None:
    """Export ``model`` (BGR 0..255 in) to ONNX with a dynamic batch and maskface metadata."""
    import onnx
    import torch

    dummy = torch.zeros(2, 3, cfg.size, cfg.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript (not in this stack); it exports this plain CNN exactly (checked after).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (dummy,), str(path), input_names=["image"],
                          output_names=outputs, opset_version=cfg.opset,
                          dynamic_axes={k: {0: "batch"} for k in ["image", *outputs]},
                          dynamo=False)
    proto = onnx.load(str(path))
    meta = {"input_size": str(cfg.size), "crop_scale": str(CROP_SCALE),
            "input": "BGR float32 0..255 (N,3,S,S)", "output": "softmax probabilities (N,C)",
            "architecture": "mobilenet_v2", **meta}
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    proto.producer_name = "maskface"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def onnx_outputs(path: Path, crops: np.ndarray) -> list[np.ndarray]:
    """Every output of an ONNX classifier on BGR uint8 crops ``(N, S, S, 3)``."""
    from maskface.models import ort_session

    x = np.ascontiguousarray(crops.astype(np.float32).transpose(0, 3, 1, 2))
    return ort_session(path).run(None, {"image": x})


def plot_history(history: Sequence[dict], path: Path) -> Path:
    """Training loss and validation accuracy per epoch."""
    from maskface.eval.plots import _pyplot, save_figure

    plt = _pyplot()
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train loss")
    a.set_xlabel("epoch")
    a.set_title("training loss (label-smoothed CE)")
    for src in history[0]["val_acc"]:
        b.plot(ep, [h["val_acc"][src] for h in history], "o-", label=src)
    b.plot(ep, [h["train_acc"] for h in history], "--", color="grey", label="train (augmented)")
    b.set_xlabel("epoch")
    b.set_title("validation accuracy")
    b.legend(fontsize=8)
    b.grid(alpha=0.3)
    return save_figure(fig, path, dpi=110)


def train_classifier(cfg: TrainConfig, progress: bool = True) -> dict:
    """Train, pick the best epoch on validation, test once, export ONNX and write the card.

    Writes into ``cfg.out``: ``mask_classifier.onnx``, ``card.json``, ``curves.png``,
    ``best.pt`` and ``splits/{train,val,test}.txt``. Returns the card.
    """
    import torch

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    data = load_data(cfg, progress)
    split_files = write_split_lists(data.samples, out / "splits")
    trainer = Trainer(cfg, progress)
    fit = trainer.fit(data)
    torch.save(trainer.model.net.state_dict(), out / "best.pt")
    test = [s for s in data.samples if s.split == "test"]
    val = [s for s in data.samples if s.split == "val"]
    test_crops = _eval_crops(test, data.images, cfg.size) if test else None
    test_rep = trainer.evaluate(test, test_crops) if test else {}
    val_rep = trainer.evaluate(val, _eval_crops(val, data.images, cfg.size))
    onnx_path = out / "mask_classifier.onnx"
    check = test_crops[:64] if test_crops is not None else _eval_crops(val[:64], data.images,
                                                                       cfg.size)
    diff = trainer.export_onnx(onnx_path, check)
    if diff > 1e-3:
        raise RuntimeError(f"ONNX output differs from torch by {diff:.2e}")
    shared = None
    if cfg.init and cfg.frozen_blocks:
        shared_path = out / "shared.onnx"
        shared_diff = trainer.export_shared(shared_path, check)
        if shared_diff > 1e-3:
            raise RuntimeError(f"shared graph differs from its parts by {shared_diff:.2e}")
        rule = _choose_rule(cfg, shared_path, split_files.get("val"), out, progress)
        shared = {"file": shared_path.name, "sha256": sha256_file(shared_path),
                  "bytes": shared_path.stat().st_size, "blocks": cfg.frozen_blocks,
                  "init": cfg.init, "max_abs_diff_vs_parts": shared_diff,
                  **({"three_way_rule": rule} if rule else {})}
        if cfg.int8_branch:
            shared["int8"] = _int8_branch(cfg, data, shared_path, split_files.get("val"),
                                          out, check, progress)
    plot_history(fit["history"], out / "curves.png")
    epoch_s = [h["epoch_s"] for h in fit["history"]]
    card = {
        "model": (f"MobileNetV2 started from {cfg.init}, its first {cfg.frozen_blocks} blocks "
                  "frozen" if cfg.init else
                  "MobileNetV2 (ImageNet init, torchvision weights from the registry)"),
        "classes": list(cfg.classes),
        "input_size": cfg.size,
        "crop_scale": CROP_SCALE,
        "config": asdict(cfg),
        "data_roots": [str(Path(d).resolve()) for d in cfg.data],
        "split": data.split.to_dict(),
        "split_lists": {k: str(v.relative_to(out)) for k, v in split_files.items()},
        "held_out_files": held_out_files(data.samples, cfg.data),
        "best_epoch": fit["best_epoch"],
        "selection": "mean over data sources of validation accuracy; ties: lower mean NLL",
        "history": fit["history"],
        "time": {"epoch_s_mean": round(float(np.mean(epoch_s)), 1),
                 "total_s": round(time.perf_counter() - t_start, 1)},
        "val": _strip(val_rep),
        "test": _strip(test_rep),
        "onnx": {"file": onnx_path.name, "sha256": sha256_file(onnx_path),
                 "bytes": onnx_path.stat().st_size, "opset": cfg.opset,
                 "max_abs_diff_vs_torch": diff},
        "environment": {"torch": torch.__version__, "threads": cfg.threads,
                        "machine": platform.machine(), "cpu": cpu_name(),
                        "python": platform.python_version()},
    }
    if shared:
        card["shared"] = shared
    write_json(out / "card.json", card, indent=2)
    return card


def _int8_branch(cfg: TrainConfig, data: LoadedData, shared_path: Path, val_list: Path | None,
                 out: Path, check: np.ndarray, progress: bool) -> dict:
    """``shared_int8.onnx``: the shared graph with its branch in int8, calibrated on
    training crops of the class-folder sources (:func:`maskface.train.quantize.calibration_crops`,
    the run's seed), its rule swept again (``rule_sweep_int8.json``)."""
    import onnx

    from maskface.eval.scenes import is_scenes_dataset
    from maskface.train.quantize import CALIBRATION_CROPS, calibration_crops, quantize_branch
    from maskface.train.three_way_rule import clear_rule

    folders = [r for r in cfg.data if not is_scenes_dataset(r)]
    scenes = {Path(r).name + sfx for r in cfg.data if is_scenes_dataset(r)
              for sfx in ("", TIGHT_SUFFIX)}
    # calibration takes face-crop files, as the shipped file's did (scenes give cut boxes)
    calib = [s.path for s in data.samples if s.split == "train" and s.source not in scenes]
    crops = calibration_crops(calib, cfg.size, CALIBRATION_CROPS, cfg.seed,
                              load=data.images.__getitem__)
    model = onnx.load(str(shared_path))
    clear_rule(model)  # the int8 file carries only the rule chosen for it
    path = quantize_branch(model, out / "shared_int8.onnx", crops)
    first = onnx_outputs(path, check)[0]
    diff = float(np.abs(first - onnx_outputs(shared_path, check)[0]).max())
    rule = _choose_rule(cfg, path, val_list, out, progress, "rule_sweep_int8.json")
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
            "calibration": {"crops": len(crops), "from": "training split of " +
                            ", ".join(folders), "seed": cfg.seed},
            "two_class_max_abs_diff_vs_shared": diff,
            **({"three_way_rule": rule} if rule else {})}


def _choose_rule(cfg: TrainConfig, shared_path: Path, val_list: Path | None, out: Path,
                 progress: bool, sweep_name: str = "rule_sweep.json") -> dict | None:
    """A three-class branch on a two-class model: choose the three-way rule on validation
    (:mod:`maskface.train.three_way_rule`, the first scenes dataset's val split and the run's
    real val photos), write the sweep to ``sweep_name`` and the rule into the graph."""
    from maskface.classify.three_way import THREE_WAY_LABELS
    from maskface.eval.scenes import is_scenes_dataset, read_splits
    from maskface.train.three_way_rule import select_rule, store_rule

    scenes = [r for r in cfg.data if is_scenes_dataset(r) and "val" in read_splits(r).values()]
    if tuple(cfg.classes) != THREE_WAY_LABELS or not scenes or val_list is None:
        return None
    result = select_rule(shared_path, val_list, scenes[0], cfg.init, progress)
    write_json(out / sweep_name, result, indent=1)
    chosen = result["chosen"]
    if not result["criterion_met"]:
        log.warning("no three-way rule keeps mask_incorrect recall >= 0.75 at precision >= "
                    "0.70 on validation: %s gets the best macro-F1 rule instead (threshold "
                    "%s, override %s: mask_incorrect P/R %.3f/%.3f; see %s)", shared_path,
                    chosen["threshold"], chosen["override"],
                    chosen["ilc_val_incorrect_precision"], chosen["ilc_val_incorrect_recall"],
                    sweep_name)
    store_rule(shared_path, chosen["threshold"], chosen["override"])
    return {"threshold": chosen["threshold"], "override": chosen["override"],
            "criterion_met": result["criterion_met"],
            "validation": {k: v for k, v in chosen.items()
                           if k not in ("threshold", "override")},
            "scenes": result["scenes"], "ilc2021_val_faces": result["ilc2021_val_faces"],
            "real_val_photos": result["real_val_photos"], "criterion": result["criterion"],
            "sweep": sweep_name}


def held_out_files(samples: Sequence[Sample], roots: Sequence[str]) -> dict:
    """Validation and test files of the sources this run split itself (paths relative to their
    data root), so the card alone pins down which real photos were never trained on."""
    out: dict = {}
    resolved = [(r, Path(r).resolve()) for r in roots]
    for s in samples:
        if s.split == "train" or s.subset.split("/")[0] in ("train", "val", "test"):
            continue
        p = Path(s.path).resolve()
        for root, rp in resolved:
            if p.is_relative_to(rp):
                key = f"{Path(root).name}:{s.split}"
                out.setdefault(key, []).append(str(p.relative_to(rp)))
                break
    return {k: sorted(v) for k, v in sorted(out.items())}


def _strip(rep: dict) -> dict:
    """Keep reports compact in the card (no ROC points)."""
    return {k: {kk: vv for kk, vv in v.items() if kk != "roc"} for k, v in rep.items()}

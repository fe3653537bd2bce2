"""Open-set identification protocol: enrol a few unmasked photos per person, query masked ones.

From identity folders (``<identity>/*.jpg``; by default the held-out identities of a training
card), a seeded draw leaves ``unknown_fraction`` of the identities out of the gallery. Every
enrolled identity gets ``n_enrol`` unmasked photos in a real :class:`~maskface.gallery.Gallery`;
its other photos, masked synthetically (or taken from ``masked_dir``), are the known queries; all
photos of the left-out identities, masked the same way, are the unknown queries.

Reported: rank-1 / rank-5 (closed set, known queries), and at the decision threshold TPIR (known
query identified as the right person with a score over the threshold), FPIR (unknown query
matched to anyone) and the unknown rejection rate; also TPIR at FPIR 1% and 5%.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from maskface.errors import InputError
from maskface.jsonfile import write_json


def default_data_root() -> Path:
    """``$MASKFACE_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("MASKFACE_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _tpir_at_fpir(known_best: np.ndarray, known_correct: np.ndarray, unknown_best: np.ndarray,
                  fpir: float) -> tuple[float, float]:
    """TPIR at the threshold letting through at most ``fpir`` of the unknown queries."""
    if len(unknown_best) == 0:
        return float("nan"), float("nan")
    t = float(np.quantile(unknown_best, 1 - fpir, method="higher")) + 1e-6
    return float((known_correct & (known_best >= t)).mean()), t


def _intervals(known_names: list[str], top1: np.ndarray, known_best: np.ndarray,
               unknown_names: list[str], unknown_best: np.ndarray, resamples: int = 2000
               ) -> dict[str, Any]:
    """95 % bootstrap intervals of rank-1 and TPIR at FPIR 1 %, resampling *people* (each with
    all their queries: one person's queries share a face and fail together), known and
    unknown people apart."""
    from maskface.eval.metrics import bootstrap_ci

    def groups(names: list[str]) -> list[np.ndarray]:
        by: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            by.setdefault(n, []).append(i)
        return [np.array(v) for v in by.values()]

    kg, ug = groups(known_names), groups(unknown_names)
    if not kg or not ug:
        return {}

    def pick(gs: list[np.ndarray], idx: np.ndarray) -> np.ndarray:
        return np.concatenate([gs[i] for i in idx])

    people = [np.arange(len(kg)), np.arange(len(ug))]
    r1 = bootstrap_ci(lambda drawn: float(top1[pick(kg, drawn[0])].mean()), people, resamples)

    def tpir(drawn: list[np.ndarray]) -> float:
        k, u = pick(kg, drawn[0]), pick(ug, drawn[1])
        return _tpir_at_fpir(known_best[k], top1[k], unknown_best[u], 0.01)[0]

    tp = bootstrap_ci(tpir, people, resamples)
    return {"rank1_ci95": [round(v, 5) for v in r1],
            "tpir_at_fpir_0.01_ci95": [round(v, 5) for v in tp],
            "ci_method": f"bootstrap, {resamples} resamples of the people (all their queries), "
                         "known and unknown people resampled apart"}


def run_identify_eval(report: str | Path, faces: str | Path | None = None,
                      masked_dir: str | Path | None = None, split_card: str | Path | None = None,
                      model: str = "default", n_enrol: int = 3, unknown_fraction: float = 0.2,
                      threshold: float | None = None, seed: int = 0, progress: bool = True,
                      crop_cache: str | Path | None = None, mask_queries: bool = True,
                      templates: int = 0, template_weight: float | None = None,
                      thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """Run the protocol, write the JSON report, and return it.

    ``mask_queries=False`` queries the same photos unmasked: the recogniser's ceiling on this
    data, which tells how much of the masked figure the mask costs. ``templates`` > 0 also
    enrols that many masked templates per enrolment photo (``maskface.recognize.templates``),
    matched as the gallery does at the door (``template_weight``: see ``Gallery.identify``).
    With per-condition ``thresholds`` the open-set decision uses the best candidate's
    condition's threshold (reported as ``tpir_operating`` / ``fpir_operating``).
    """
    from maskface.eval.verify import PairEmbedder, TemplateEmbedder, default_mask_fn
    from maskface.gallery import Gallery
    from maskface.recognize import create_embedder, default_threshold
    from maskface.recognize.faces import portrait_detector
    from maskface.train.recog_data import IdentitySplit, identity_photos, masked_copies

    t0 = time.perf_counter()
    faces = Path(faces) if faces else default_data_root() / "faces" / "vggface2-sample"
    photos = identity_photos(faces)
    if split_card:
        held = IdentitySplit.from_card(split_card).holdout
        photos = {k: v for k, v in photos.items() if k in set(held)}
    photos = {k: v for k, v in photos.items() if len(v) > n_enrol}
    if len(photos) < 4:
        raise InputError(f"{faces}: need at least 4 identities with more than {n_enrol} photos")
    rng = np.random.default_rng(seed)
    names = sorted(photos)
    n_unknown = int(round(unknown_fraction * len(names)))
    unknown = set(rng.choice(names, n_unknown, replace=False).tolist()) if n_unknown else set()
    copies = masked_copies(masked_dir)

    embedder = create_embedder(model)
    t = default_threshold(embedder) if threshold is None else float(threshold)

    def query_item(name: str, p: Path) -> tuple[Path, bool]:
        if not mask_queries:
            return p, False
        mp = copies.get((name, p.stem))
        return (mp, False) if mp is not None else (p, True)  # a given copy is already masked

    enrol_items, known_q, unknown_q = {}, [], []
    for name in names:
        order = rng.permutation(len(photos[name]))
        ps = [photos[name][i] for i in order]
        if name in unknown:
            unknown_q += [(name, query_item(name, p)) for p in ps]
        else:
            enrol_items[name] = [(p, False) for p in ps[:n_enrol]]
            known_q += [(name, query_item(name, p)) for p in ps[n_enrol:]]
    pe = PairEmbedder(embedder, portrait_detector(), None if copies else default_mask_fn(),
                      seed, crop_cache)
    all_items = [it for v in enrol_items.values() for it in v] + [it for _, it in known_q] + \
        [it for _, it in unknown_q]
    cache = pe.embed(all_items, progress)

    temb, no_template = {}, 0
    if templates:
        te = TemplateEmbedder(embedder, pe.detector, templates, Path(crop_cache).with_name(
            Path(crop_cache).stem + f"_templates{templates}d.npz") if crop_cache else None)
        temb = te.embed([p for v in enrol_items.values() for p, _ in v], progress)
        no_template = te.no_template

    def q_flags(qs) -> list[bool]:  # the probe's mask state (a given copy is masked too)
        return [mask_queries for _ in qs]

    with tempfile.TemporaryDirectory() as tmp, \
            Gallery(Path(tmp) / "eval.db", model=embedder.name, dim=embedder.dim) as g:
        for name, items in enrol_items.items():
            g.enroll(name, np.stack([cache[it] for it in items]), masked=False)
            extra = [temb[p] for p, _ in items if p in temb and len(temb[p])]
            if extra:
                g.add_embeddings(name, np.concatenate(extra), masked=True)
        kq = embedder.weigh(np.stack([cache[it] for _, it in known_q]), q_flags(known_q))
        uq = embedder.weigh(np.stack([cache[it] for _, it in unknown_q]), q_flags(unknown_q)) \
            if unknown_q else None
        kw = {"masked": None if not templates else q_flags(known_q),
              "template_weight": template_weight}
        k_matches = g.identify(kq, t, k=5, **kw)
        u_matches = g.identify(uq, t, k=1, **{**kw, "masked": None if not templates else
                                              q_flags(unknown_q)}) if uq is not None else []
        op = {}
        if thresholds:
            ko = g.identify(kq, t, k=1, masked=q_flags(known_q), thresholds=thresholds,
                            template_weight=template_weight)
            uo = g.identify(uq, t, k=1, masked=q_flags(unknown_q), thresholds=thresholds,
                            template_weight=template_weight) if uq is not None else []
            truth_k = [n for n, _ in known_q]
            op = {"operating_thresholds": thresholds,
                  "tpir_operating": round(float(np.mean([m.known and m.name == n
                                                         for m, n in zip(ko, truth_k)])), 5),
                  "fpir_operating": round(float(np.mean([m.known for m in uo])), 5)
                  if uo else float("nan")}
    truth = [n for n, _ in known_q]
    top1 = np.array([m.candidates[0][1] == n for m, n in zip(k_matches, truth)])
    top5 = np.array([n in [c[1] for c in m.candidates] for m, n in zip(k_matches, truth)])
    k_best = np.array([m.candidates[0][2] for m in k_matches])
    u_best = np.array([m.candidates[0][2] for m in u_matches]) if u_matches else np.zeros(0)
    tpir = float((top1 & (k_best >= t)).mean())
    fpir = float((u_best >= t).mean()) if len(u_best) else float("nan")
    res: dict[str, Any] = {
        "model": embedder.label,
        "faces": str(faces),
        "masked": str(masked_dir) if masked_dir else "drawn by maskface.synth (seeded)",
        "queries": "masked" if mask_queries else "unmasked",
        "identities": len(names),
        "gallery_people": len(enrol_items),
        "unknown_people": len(unknown),
        "enrol_photos_per_person": n_enrol,
        "known_queries": len(known_q),
        "unknown_queries": len(unknown_q),
        "rank1": round(float(top1.mean()), 5),
        "rank5": round(float(top5.mean()), 5),
        "threshold": round(t, 4),
        "tpir": round(tpir, 5),
        "fpir": round(fpir, 5),
        "unknown_rejection_rate": round(1 - fpir, 5),
        "seed": seed,
        "templates_per_photo": templates,
        "template_weight": template_weight,
        "enrol_photos_without_templates": no_template,
        **op,
        **{k: int(v) for k, v in pe.counts.items()},
    }
    for far in (0.01, 0.05):
        v, th = _tpir_at_fpir(k_best, top1, u_best, far)
        res[f"tpir_at_fpir_{far:g}"] = round(v, 5)
        res[f"threshold_at_fpir_{far:g}"] = round(th, 4)
    res.update(_intervals(truth, top1, k_best, [n for n, _ in unknown_q], u_best))
    errors = identify_errors(known_q, k_matches, unknown_q, u_matches, t)
    res["n_errors"] = len(errors)
    res["errors"] = errors[:100]
    res["time_s"] = round(time.perf_counter() - t0, 1)
    report = Path(report)
    report.parent.mkdir(parents=True, exist_ok=True)
    sheet = plot_identify_errors(errors, pe, {n: v[0][0] for n, v in enrol_items.items()},
                                 report.with_name(report.stem + "_errors.png"))
    if sheet is not None:
        res["errors_png"] = str(sheet)
    write_json(report, res, indent=2)
    return res


def identify_errors(known_q, k_matches, unknown_q, u_matches, threshold: float
                    ) -> list[dict[str, Any]]:
    """Known queries whose best candidate is someone else (highest score first), then unknown
    queries accepted as someone at ``threshold`` (highest first)."""
    wrong = []
    for (name, (path, masked)), m in zip(known_q, k_matches):
        _, said, score = m.candidates[0]
        if said != name:
            ranks = [c[1] for c in m.candidates]
            rank = ranks.index(name) + 1 if name in ranks else None
            wrong.append({"query": str(path), "masked": masked, "true": name, "said": said,
                          "score": round(float(score), 4), "true_rank": rank,
                          "true_score": None if rank is None
                          else round(float(m.candidates[rank - 1][2]), 4)})
    strangers = [{"query": str(path), "masked": masked, "true": None, "said": m.candidates[0][1],
                  "score": round(float(m.candidates[0][2]), 4)}
                 for (_, (path, masked)), m in zip(unknown_q, u_matches)
                 if m.candidates[0][2] >= threshold]
    return (sorted(wrong, key=lambda e: -e["score"])
            + sorted(strangers, key=lambda e: -e["score"]))


def plot_identify_errors(errors: list[dict[str, Any]], pe, enrolled: dict[str, Path],
                         path: str | Path, limit: int = 48) -> Path | None:
    """A sheet of :func:`identify_errors`: the query as the embedder saw it, the person it was
    taken for and (for a known query) the right person, each by their first enrolment photo."""
    from maskface.eval.plots import plot_sheet

    images, captions = [], []
    for e in errors[:limit]:
        query = pe.crop(Path(e["query"]), e["masked"])
        said = pe.crop(enrolled[e["said"]], False)
        if query is None or said is None:
            continue
        true = pe.crop(enrolled[e["true"]], False) if e["true"] else None
        gap = np.full((query.shape[0], 4, 3), 255, np.uint8)
        blank = np.full_like(query, 255)
        images.append(np.hstack([query, gap, said, gap, blank if true is None else true]))
        first = f"taken for {e['said']} {e['score']:.3f}"
        second = ("a stranger (not enrolled)" if e["true"] is None else
                  f"is {e['true']}" + ("" if e["true_rank"] is None else
                                       f", rank {e['true_rank']} {e['true_score']:.3f}"))
        captions.append((first, second))
    if not images:
        return None
    return plot_sheet(images, captions, path, columns=3, size=None)

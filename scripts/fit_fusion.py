"""Fit the fusion weights, the template rule and the per-condition thresholds on the
VALIDATION identities of the recogniser's training card (never the held-out test identities).

Protocol on the validation identities (vggface2-sample, the card's ``val`` list): each identity
enrols its first ``--enrol`` photos (unmasked) plus their masked templates
(``maskface.recognize.templates``, the product path); a seeded fifth of the identities is left
out as unknown people; the other photos, masked (``maskface.synth``, seeded) or not, are the
queries. For each probe mask state a grid search picks SFace's weight ``w`` in
``w * cos(sface_masked) + (1 - w) * cos(reid0095)`` and, for masked probes, the template weight,
by rank-1 + TPIR at FPIR 1 %. Then, with those, each condition's threshold is set at the target
FAR on validation impostor pairs (probe of one identity against an enrolment of another).

Writes ``src/maskface/weights/fusion.json`` and ``src/maskface/weights/thresholds.json``
(for the fused space and for SFace's space alone).

    PYTHONPATH=src .venv/bin/python scripts/fit_fusion.py --cache-dir /tmp/fit
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src/maskface/weights"
GRID = np.round(np.arange(0.0, 1.01, 0.1), 2)
TEMPLATE_GRID = [None, 0.0, 0.25, 0.5, 0.75, 1.0]  # None: the better of the two


def embeddings(cache_dir: Path, enrol: int, n_templates: int, seed: int, realign: bool = True):
    from maskface.eval.identify import default_data_root
    from maskface.eval.verify import PairEmbedder, TemplateEmbedder, default_mask_fn
    from maskface.recognize import (
        MaskedRealigner,
        RealignedEmbedder,
        Reid0095Embedder,
        create_embedder,
    )
    from maskface.recognize.faces import portrait_detector
    from maskface.train.recog_data import IdentitySplit, identity_photos

    split = IdentitySplit.from_card(WEIGHTS / "recognizer_sface_masked.card.json")
    photos = identity_photos(default_data_root() / "faces" / "vggface2-sample")
    photos = {k: photos[k] for k in split.val if k in photos and len(photos[k]) > enrol}
    det = portrait_detector()
    out = {}
    reid = RealignedEmbedder(Reid0095Embedder(), MaskedRealigner()) if realign else \
        Reid0095Embedder()
    for name, emb in (("sface", create_embedder("sface_masked", realign)), ("reid", reid)):
        pe = PairEmbedder(emb, det, default_mask_fn(), seed,
                          cache_dir / f"val_crops_seed{seed}.npz")
        items = [(p, m) for v in photos.values() for p in v for m in (False, True)]
        e = pe.embed(items)
        te = TemplateEmbedder(emb, det, n_templates, cache_dir / f"val_templates{n_templates}d.npz")
        t = te.embed([p for v in photos.values() for p in v[:enrol]])
        out[name] = (e, t)
    return photos, out


def score_tables(photos, emb, enrol: int, unknown_fraction: float, seed: int):
    """Per query, each component's scores against every enrolled identity's photos and masked
    templates, ``(Q, P, K)`` arrays (NaN-padded), for masked and unmasked queries; fused and
    reduced per person exactly as ``Gallery.identify`` does (:func:`fused`)."""
    names = sorted(photos)
    rng = np.random.default_rng(seed)
    unknown = set(rng.choice(names, int(round(unknown_fraction * len(names))),
                             replace=False).tolist())
    known = [n for n in names if n not in unknown]
    tables = {}
    for masked in (False, True):
        q_items = [(n, (p, masked)) for n in names
                   for p in (photos[n] if n in unknown else photos[n][enrol:])]
        comp = {}
        for c, (e, t) in emb.items():
            q = np.stack([e[it] for _, it in q_items])
            plain = np.stack([np.stack([e[(p, False)] for p in photos[n][:enrol]]) @ q.T
                              for n in known]).transpose(2, 0, 1)  # (Q, P, enrol)
            tv = [np.concatenate([t[p] for p in photos[n][:enrol]]) for n in known]
            width = max(1, max(len(v) for v in tv))
            tmpl = np.full((len(q), len(known), width), np.nan, np.float32)
            for j, v in enumerate(tv):
                if len(v):
                    tmpl[:, j, : len(v)] = (v @ q.T).T
            comp[c] = (plain, tmpl)
        truth = np.array([known.index(n) if n in known else -1 for n, _ in q_items])
        tables[masked] = (comp, truth)
    return tables, known


def fused(comp, w: float, tw, use_templates: bool):
    """Person scores ``(Q, P)``: the best photo (and best masked template) by the fused score
    ``w * sface + (1 - w) * reid``, mixed by the template rule: as the gallery scores them."""
    plain = np.max(w * comp["sface"][0] + (1 - w) * comp["reid"][0], axis=2)
    if not use_templates:
        return plain
    both_t = w * comp["sface"][1] + (1 - w) * comp["reid"][1]
    has = ~np.isnan(both_t).all(axis=2)
    tmpl = np.where(has, np.nanmax(np.where(np.isnan(both_t), -np.inf, both_t), axis=2), np.nan)
    mix = np.maximum(plain, tmpl) if tw is None else tw * tmpl + (1 - tw) * plain
    return np.where(has, mix, plain)


def objective(scores, truth) -> tuple[float, float, float]:
    k, u = truth >= 0, truth < 0
    best = scores.argmax(1)
    top = scores.max(1)
    rank1 = float((best[k] == truth[k]).mean())
    t = float(np.quantile(top[u], 0.99, method="higher")) + 1e-6
    tpir = float(((best[k] == truth[k]) & (top[k] >= t)).mean())
    return rank1 + tpir, rank1, tpir


def main() -> None:
    from maskface.eval.metrics import impostor_threshold

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", type=Path, required=True)
    ap.add_argument("--enrol", type=int, default=3)
    ap.add_argument("--templates", type=int, default=3)
    ap.add_argument("--far", type=float, default=1e-3)
    ap.add_argument("--no-realign", action="store_true",
                    help="masked faces aligned on the detector's landmarks only (as before "
                         "masked_alignment)")
    ap.add_argument("--out", type=Path, default=WEIGHTS,
                    help="where fusion.json and thresholds.json go (default: the package)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the embeddings a previous run kept in --cache-dir")
    args = ap.parse_args()
    tag = "_detector_landmarks" if args.no_realign else "_realigned"
    store = args.cache_dir / f"fit_embeddings_e{args.enrol}_t{args.templates}_s{args.seed}{tag}.pkl"
    if args.reuse and store.is_file():  # the embeddings do not depend on what is fitted
        photos, emb = pickle.loads(store.read_bytes())
    else:
        photos, emb = embeddings(args.cache_dir, args.enrol, args.templates, args.seed,
                                 not args.no_realign)
        store.write_bytes(pickle.dumps((photos, emb)))
    tables, known = score_tables(photos, emb, args.enrol, 0.2, args.seed)
    fit = {}
    comp_u, truth_u = tables[False]
    res_u = {float(w): objective(fused(comp_u, w, None, False), truth_u) for w in GRID}
    wu = max(res_u, key=lambda w: (res_u[w][0], w))  # ties: more SFace
    comp_m, truth_m = tables[True]
    res_m = {(float(w), tw): objective(fused(comp_m, w, tw, True), truth_m)
             for w in GRID for tw in TEMPLATE_GRID}
    wm, tw = max(res_m, key=lambda k: (res_m[k][0], k[0]))
    no_tmpl = {float(w): objective(fused(comp_m, w, None, False), truth_m) for w in GRID}
    fit = {
        "weight_unmasked": wu, "weight_masked": wm, "templates": args.templates,
        "template_weight": tw,
        "masked_faces": "aligned on the detector's landmarks" if args.no_realign else
                        "re-aligned by masked_alignment",
        "fitted": "scripts/fit_fusion.py on the 60 validation identities of "
                  "recognizer_sface_masked.card.json (never the 120 held-out ones)",
        "validation": {
            "unmasked_probes": {"sface_alone": res_u[1.0][1:], "fused": res_u[wu][1:]},
            "masked_probes": {"sface_alone": no_tmpl[1.0][1:],
                              "sface_alone_with_templates": res_m[(1.0, tw)][1:],
                              "fused_without_templates": no_tmpl[wm][1:],
                              "fused_with_templates": res_m[(wm, tw)][1:]},
            "metric": "[rank-1, TPIR at FPIR 1 %]",
            "known_identities": len(known), "identities": len(photos),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fusion.json").write_text(json.dumps(fit, indent=2) + "\n")
    print(json.dumps(fit, indent=2))

    # Thresholds at the target FAR from impostor pairs of the validation identities: every
    # probe (all photos, masked or not) against every other identity's enrolment.
    thresholds = {}
    for space, (w_u, w_m) in (("sface+reid0095", (wu, wm)), ("sface", (1.0, 1.0))):
        table = {"far": args.far, "fitted": fit["fitted"]}
        for cond, masked, use_t in (("unmasked-unmasked", False, False),
                                    ("masked-unmasked", True, False),
                                    ("masked-masked", True, True)):
            comp, truth = tables[masked]
            w = w_m if masked else w_u
            s = fused(comp, w, tw, use_t)  # the door's score (for a masked probe: the rule)
            if use_t:  # only people with templates are compared under masked-masked
                s = np.where(np.isnan(comp["sface"][1]).all(axis=2), np.nan, s)
            imp = s[truth[:, None] != np.arange(s.shape[1])[None, :]]
            imp = imp[np.isfinite(imp)]
            table[cond] = round(impostor_threshold(imp, args.far), 4)
            table[f"{cond}_impostor_pairs"] = int(imp.size)
        thresholds[space] = table
    (args.out / "thresholds.json").write_text(json.dumps(thresholds, indent=2) + "\n")
    print(json.dumps(thresholds, indent=2))


if __name__ == "__main__":
    main()

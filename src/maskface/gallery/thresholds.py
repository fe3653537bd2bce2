"""Operating thresholds per comparison condition, each at a stated false-accept rate.

A probe and a template are each masked or not; their pair is one of :data:`CONDITIONS`
(an unmasked probe against a masked template counts as ``masked-unmasked``). Scores of the
three conditions have different impostor distributions, so each gets its own cosine threshold,
chosen so that a stated share of impostor comparisons (FAR, default 1e-3 at a door) pass.

Where they come from, first found wins:

1. the gallery's own calibration (``maskface calibrate``; ``meta.thresholds`` in the file),
2. the model's thresholds (``weights/thresholds.json``, fitted on validation identities by
   ``scripts/fit_fusion.py``),
3. the model's single threshold for every condition.

:func:`operating_threshold` is the one place that answers "what threshold applies here".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from maskface.eval.metrics import impostor_threshold

CONDITIONS = ("unmasked-unmasked", "masked-unmasked", "masked-masked")
DEFAULT_FAR = 1e-3
_MODEL_FILE = Path(__file__).resolve().parents[1] / "weights" / "thresholds.json"
_META_KEY = "thresholds"


def condition(probe_masked: bool, template_masked: bool) -> str:
    """The condition of comparing a probe with a template, by their mask states."""
    n = int(bool(probe_masked)) + int(bool(template_masked))
    return CONDITIONS[n]


def model_thresholds(model: str | None) -> dict[str, Any] | None:
    """The shipped per-condition thresholds of an embedding space (``None`` if not fitted)."""
    if not model or not _MODEL_FILE.is_file():
        return None
    return json.loads(_MODEL_FILE.read_text()).get(model)


def model_threshold(model: str | None, cond: str, fallback: float) -> float:
    """1:1 verification's threshold: the model's shipped one for condition ``cond``, else
    ``fallback``."""
    return float((model_thresholds(model) or {}).get(cond, fallback))


def template_offset(thresholds: dict[str, float]) -> float:
    """How much higher a masked probe scores against masked templates than against unmasked
    photos at the same false-accept rate (masked-masked less masked-unmasked threshold): taken
    off template scores, so photo and template compete on one scale."""
    return float(thresholds["masked-masked"]) - float(thresholds["masked-unmasked"])


def _stored(gallery) -> tuple[dict[str, Any], str]:
    """The table this gallery's thresholds come from, and which one (first found wins)."""
    calibration = gallery_calibration(gallery)
    if calibration:
        return calibration, "site calibration"
    model = model_thresholds(gallery.model)
    return (model, "model") if model else ({}, "single threshold")


def threshold_source(gallery) -> str:
    """Where :func:`thresholds_for` takes this gallery's thresholds from: ``site
    calibration``, ``model`` or ``single threshold``."""
    return _stored(gallery)[1]


def thresholds_for(gallery, fallback: float | None = None) -> dict[str, float]:
    """Threshold of each condition for this gallery (calibration, else model, else
    ``fallback`` everywhere)."""
    table = _stored(gallery)[0]
    out = {}
    for c in CONDITIONS:
        v = table.get(c)
        if v is None:
            if fallback is None:
                from maskface.recognize import THRESHOLDS

                fallback = THRESHOLDS.get(gallery.model or "", 0.4)
            v = fallback
        out[c] = float(v)
    return out


def operating_threshold(gallery, probe_masked: bool, template_masked: bool) -> float:
    """The operating cosine threshold for a probe of this mask state against a template of
    that one, in this gallery (its calibration, else the model's; see the module doc)."""
    return thresholds_for(gallery)[condition(probe_masked, template_masked)]


def gallery_calibration(gallery) -> dict[str, Any] | None:
    """The site calibration stored in the gallery file, if any."""
    raw = gallery.get_meta(_META_KEY)
    return json.loads(raw) if raw else None


def store_calibration(gallery, table: dict[str, Any]) -> None:
    """Store a site calibration (``{condition: threshold, "far": ..., ...}``) in the gallery."""
    gallery.set_meta(_META_KEY, json.dumps(table))


def _roc(genuine: np.ndarray, impostor: np.ndarray, n: int = 200) -> list[list[float]]:
    """ROC points ``[threshold, FAR, TAR]`` (the project's one ROC, ``eval.metrics``, thinned
    to at most ``n`` points; the first, at threshold ``None`` = +inf, accepts nobody)."""
    if len(genuine) == 0 or len(impostor) == 0:
        return []
    from maskface.eval.metrics import roc_curve

    curve = roc_curve(np.r_[genuine, impostor],
                      np.r_[np.ones(len(genuine)), np.zeros(len(impostor))]).to_dict(n)
    return [[None if t is None else round(t, 4), far, tar]
            for t, far, tar in zip(curve["thresholds"], curve["fpr"], curve["tpr"])]


def calibrate(gallery, weigh=None, far: float = DEFAULT_FAR, fpir: float | None = None,
              max_comparisons: int = 10_000_000, seed: int = 0,
              progress: Callable[[Iterable], Iterable] | None = None) -> dict[str, Any]:
    """Per-condition thresholds at ``far`` (or at ``fpir``) from a site's own enrolled people.

    Every stored embedding is taken in turn as a probe (weighted as the door weighs it:
    ``weigh``) and compared, as the door compares, with each *person*: the best of that
    person's templates in the condition of (probe masked, template masked). Impostor scores:
    the probe against every other person; genuine score: against its own person, leaving out
    templates made from the same photo (a synthetic template against its own photo). So the
    FAR is per probe-person comparison, the rate at which one stranger passes for one
    enrolled person (a person with many templates is not under-counted).

    With ``fpir`` the threshold is set on the door's own question instead: each probe, its own
    person left out, is a stranger; its best score over all other people passes the door at a
    rate of at most ``fpir`` (false-positive identification rate). Either way the report has
    both rates at the chosen threshold, the counts, the TAR, the rate resolvable with this many
    comparisons, and the ROC.

    A small gallery cannot resolve a low rate (at FAR 1e-3, fewer than 1,000 impostor
    comparisons): its threshold is then only "above every impostor seen", an estimate biased
    low. There the model's validated threshold (``weights/thresholds.json``) is kept when it
    is stricter, so calibrating a few people never loosens the door (the entry's ``source``
    says which, ``site_threshold`` what the gallery alone gave).

    Probes are scored in blocks (memory stays bounded); a gallery so large that every
    embedding against every person would exceed ``max_comparisons`` uses a seeded sample of
    probes (``report["probes"]`` says how many). ``progress`` wraps the blocks (a bar).
    """
    people = gallery.people()
    rows = []  # (person, masked, photo, vector)
    for p in people:
        vecs, flags, sources = gallery.embedding_rows(p.id)
        for v, m, s in zip(vecs, flags, sources):
            photo = s.split(":", 2)[2] if s and s.startswith("synthetic-mask:") else s
            rows.append((p.id, bool(m), photo or f"row{len(rows)}", v))
    if len(people) < 2 or not rows:
        from maskface.errors import InputError

        raise InputError("calibration needs at least two enrolled people")
    vec = np.stack([r[3] for r in rows]).astype(np.float32)
    pid = np.array([r[0] for r in rows])
    msk = np.array([r[1] for r in rows])
    photo = np.unique(np.array([r[2] for r in rows], dtype=object), return_inverse=True)[1]
    probes = np.concatenate([weigh(vec[msk == m], [m] * int((msk == m).sum()))
                             if weigh else vec[msk == m] for m in (False, True)])
    order = np.concatenate([np.flatnonzero(msk == m) for m in (False, True)])
    q = np.zeros_like(probes)
    q[order] = probes  # back in row order
    by_person = np.argsort(pid, kind="stable")  # template columns grouped by person
    starts = np.flatnonzero(np.r_[True, np.diff(pid[by_person]) != 0])
    n_probes = min(len(rows), max(1, max_comparisons // len(people)))
    probe_rows = np.arange(len(rows)) if n_probes == len(rows) else np.sort(
        np.random.default_rng(seed).choice(len(rows), n_probes, replace=False))
    kinds = {"unmasked-unmasked": (False, False), "masked-unmasked": (True, False),
             "masked-masked": (True, True)}
    scores: dict[str, dict[str, list[np.ndarray]]] = {
        c: {"imp": [], "gen": [], "stranger": []} for c in CONDITIONS}
    block = max(1, 4_000_000 // len(rows))  # probe rows per block: ~4M scores at a time
    blocks = range(0, len(probe_rows), block)
    for b0 in progress(blocks) if progress else blocks:
        idx = probe_rows[b0 : b0 + block]
        sims = q[idx] @ vec.T  # (probe row, template row)
        same = pid[idx, None] == pid[None, :]
        diff_photo = photo[idx, None] != photo[None, :]
        for c in CONDITIONS:
            pm, tm = kinds[c]
            sel = np.outer(msk[idx] == pm, msk == tm)
            if c == "masked-unmasked":  # an unmasked probe against a masked template too
                sel |= np.outer(~msk[idx], msk)
            # Each probe against each other person: the best of their templates here ...
            best = np.maximum.reduceat(np.where(sel & ~same, sims, -np.inf)[:, by_person],
                                       starts, axis=1)
            own = np.where(sel & same & diff_photo, sims, -np.inf).max(axis=1)
            # ... and as a stranger (its own person left out) against everyone at once
            for key, v in (("imp", best), ("gen", own), ("stranger", best.max(axis=1))):
                scores[c][key].append(v[np.isfinite(v)])
    target = {"fpir": fpir} if fpir is not None else {"far": far}
    model = model_thresholds(gallery.model) or {}
    table: dict[str, Any] = dict(target)
    report: dict[str, Any] = {**target, "people": len(people), "embeddings": len(rows),
                              "probes": int(n_probes), "conditions": {}}
    for c in CONDITIONS:
        imp, gen, stranger = (np.concatenate(scores[c][k]) for k in ("imp", "gen", "stranger"))
        entry: dict[str, Any] = {"genuine_comparisons": int(gen.size),
                                 "impostor_comparisons": int(imp.size),
                                 "strangers": int(stranger.size)}
        if imp.size:
            rate, pool = (fpir, stranger) if fpir is not None else (far, imp)
            t = site = impostor_threshold(pool, rate)
            resolvable = pool.size * rate >= 1
            if not resolvable and c in model and float(model[c]) > site:
                t = float(model[c])
            table[c] = round(t, 4)
            entry.update(source="site" if t == site else "model", site_threshold=round(site, 4),
                         resolvable=bool(resolvable))
            entry.update(threshold=round(t, 4), far_measured=round(float((imp >= t).mean()), 6),
                         fpir_measured=round(float((stranger >= t).mean()), 6),
                         far_resolvable=round(1.0 / imp.size, 6),
                         fpir_resolvable=round(1.0 / stranger.size, 6),
                         tar=round(float((gen >= t).mean()), 4) if gen.size else None,
                         roc=_roc(gen, imp))
        report["conditions"][c] = entry
    return {"table": table, "report": report}

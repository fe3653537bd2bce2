"""Verification protocol: pair files, fold-wise thresholds, and ``maskface eval verify`` on real
LFW pairs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from maskface.cli import load_commands
from maskface.errors import InputError
from maskface.eval.verify import (
    PairEmbedder,
    best_threshold,
    evaluate_pairs,
    fold_accuracies,
    read_lfw_pairs,
    read_pairs_csv,
)

runner = CliRunner()


def test_threshold_is_chosen_on_the_other_folds():
    # Fold 0 alone is separable at 0.5, but the other folds put the threshold above 0.72,
    # so fold 0 is judged there and rejects its same-person pair.
    scores = np.array([0.55, 0.45, 0.9, 0.7, 0.95, 0.72])
    same = np.array([True, False, True, False, True, False])
    folds = np.array([0, 0, 1, 1, 2, 2])
    t0 = best_threshold(scores[:2], same[:2])
    assert ((scores[:2] >= t0) == same[:2]).all()
    accs, ths = fold_accuracies(scores, same, folds)
    assert 0.72 < ths[0] < 0.9 and accs[0] == 0.5


def test_pair_errors_are_the_pairs_judged_wrongly_at_their_folds_threshold(tmp_path):
    from pathlib import Path

    from maskface.eval.verify import Pair, pair_errors

    scores = np.array([0.55, 0.45, 0.9, 0.7, 0.95, 0.72])
    same = [True, False, True, False, True, False]
    folds = [0, 0, 1, 1, 2, 2]
    pairs = [Pair(Path(f"a{i}.jpg"), Path(f"b{i}.jpg"), s, f)
             for i, (s, f) in enumerate(zip(same, folds))]
    _, ths = fold_accuracies(scores, np.array(same), np.array(folds))
    errors = pair_errors(pairs, scores, dict(enumerate(ths.tolist())))
    wrong = [i for i in range(6) if (scores[i] >= ths[folds[i]]) != same[i]]
    assert sorted(e["index"] for e in errors) == wrong and wrong[0] == 0
    margins = [abs(e["score"] - e["threshold"]) for e in errors]
    assert margins == sorted(margins, reverse=True)
    assert errors[0] == {"index": 0, "a": "a0.jpg", "b": "b0.jpg", "same": True,
                         "score": 0.55, "threshold": round(float(ths[0]), 4), "fold": 0}


def test_pair_files(tmp_path, data_dir):
    pairs = read_lfw_pairs(data_dir / "lfw")
    assert len(pairs) == 1800 and {p.fold for p in pairs} == {0, 1, 2}
    assert sum(p.same for p in pairs) == 900
    assert all(p.a.is_file() and p.b.is_file() for p in pairs[:20])
    bad = tmp_path / "pairs.csv"
    bad.write_text("a,b\nx.jpg,y.jpg\n")
    with pytest.raises(InputError, match="path_a,path_b,same"):
        read_pairs_csv(bad)
    bad.write_text("path_a,path_b,same\nx.jpg,y.jpg,maybe\n")
    with pytest.raises(InputError, match="'same'"):
        read_pairs_csv(bad)
    (tmp_path / "lfw").mkdir()
    (tmp_path / "lfw" / "pairs.txt").write_text("3 300\nA 1 2\n")
    with pytest.raises(InputError, match="header promises"):
        read_lfw_pairs(tmp_path / "lfw")


def _lfw_csv(data_dir, tmp_path, n_each: int = 10):
    pairs = read_lfw_pairs(data_dir / "lfw")
    pick = [p for p in pairs if p.same][:n_each] + [p for p in pairs if not p.same][:n_each]
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path_a", "path_b", "same"])
        for p in pick:
            w.writerow([p.a, p.b, int(p.same)])  # absolute paths stay absolute
    return path


@pytest.mark.data
def test_intervals_widen_where_few_impostors_decide():
    """TAR at FAR 1e-3 over a few hundred impostor pairs is set by the top impostor or two:
    its interval is wide; the accuracy's interval holds the accuracy."""
    from maskface.eval.metrics import tar_at_far
    from maskface.eval.verify import pair_intervals

    rng = np.random.default_rng(0)
    same = np.r_[np.ones(300, bool), np.zeros(300, bool)]
    scores = np.r_[rng.normal(0.45, 0.12, 300), rng.normal(0.1, 0.1, 300)]
    folds = np.tile(np.arange(3), 200)
    accs, ths = fold_accuracies(scores, same, folds)
    ci = pair_intervals(scores, same, folds, ths, resamples=500)
    lo, hi = ci["accuracy_ci95"]
    assert lo <= accs.mean() <= hi and hi - lo < 0.05
    lo, hi = ci["tar_at_far_1e-3_ci95"]
    assert lo <= tar_at_far(scores, same, 1e-3) <= hi and hi - lo > 0.05


def test_cli_eval_verify_on_lfw_csv(tmp_path, data_dir):
    csv_path = _lfw_csv(data_dir, tmp_path)
    report = tmp_path / "out" / "verify.json"
    res = runner.invoke(load_commands(), ["eval", "verify", "--pairs", str(csv_path),
                                          "--report", str(report)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "\r" not in res.stderr
    rep = json.loads(report.read_text())
    for key in ("accuracy", "accuracy_std", "roc_auc", "tar_at_far_1e-3", "threshold",
                "no_face_fallback", "histogram_png"):
        assert key in rep
    assert rep["pairs"] == 20 and rep["folds"] == 10 and rep["mask"] == "none"
    assert rep["roc_auc"] > 0.9 and rep["accuracy"] >= 0.8
    lo, hi = rep["accuracy_ci95"]
    assert lo <= rep["accuracy"] <= hi
    assert "95 % interval" in res.output
    assert report.with_suffix(".png").stat().st_size > 5000


@pytest.mark.data
def test_masked_pairs_use_the_mask_function(tmp_path, data_dir):
    from maskface.recognize import SFaceEmbedder
    from maskface.recognize.faces import portrait_detector

    pairs = read_pairs_csv(_lfw_csv(data_dir, tmp_path, 5), n_folds=2)
    calls = []

    def grey_lower_half(image, face, seed):  # a crude stand-in mask: cheap and deterministic
        calls.append(seed)
        out = image.copy()
        y = int(face.landmarks[2, 1])
        out[y:] = 128
        return out

    pe = PairEmbedder(SFaceEmbedder(), portrait_detector(), grey_lower_half, seed=3)
    one = evaluate_pairs(pairs, pe.embedder, pe.detector, "one", 3, grey_lower_half,
                         progress=False, pair_embedder=pe)
    assert len(calls) == len({p.b for p in pairs})  # only the second images, each once
    both = evaluate_pairs(pairs, pe.embedder, pe.detector, "both", 3, grey_lower_half,
                          progress=False, pair_embedder=pe)
    assert len(calls) == len({p.b for p in pairs} | {p.a for p in pairs})  # cache reused
    assert one["mask"] == "one" and both["mask"] == "both"
    assert both["mean_score_same"] < one["mean_score_same"] + 0.2
    # the errors are the pairs each fold got wrong, and their crops are the masked ones seen
    n_fold = np.bincount([p.fold for p in pairs])
    assert both["n_errors"] == round(sum((1 - a) * n for a, n in
                                         zip(both["fold_accuracy"], n_fold)))
    a, b = one["_crops"](0)
    assert a.shape == b.shape == (112, 112, 3)
    assert b[100:].std() < a[100:].std()  # the probe's lower face greyed, the enrolled one not


@pytest.mark.data
def test_eval_identify_reports_and_shows_its_errors(tmp_path, data_dir):
    """Open-set identification on 10 real identities (masked queries): the figures add up, and
    the errors listed are exactly the wrong rank-1 answers and the strangers let in."""
    import cv2

    src = data_dir / "faces" / "vggface2-sample"
    if not src.is_dir():
        pytest.skip(f"{src} not found")
    faces = tmp_path / "faces"
    for d in sorted(p for p in src.iterdir() if p.is_dir())[:10]:
        (faces / d.name).mkdir(parents=True)
        for f in sorted(d.glob("*.jpg"))[:5]:
            (faces / d.name / f.name).symlink_to(f)
    report = tmp_path / "out" / "identify.json"
    res = runner.invoke(load_commands(), ["eval", "identify", "--faces", str(faces),
                                          "--report", str(report), "--enrol", "3",
                                          "--threshold", "0.2"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rep = json.loads(report.read_text())
    assert (rep["identities"], rep["gallery_people"], rep["unknown_people"]) == (10, 8, 2)
    assert (rep["known_queries"], rep["unknown_queries"]) == (16, 10)
    wrong_known = [e for e in rep["errors"] if e["true"] is not None]
    strangers = [e for e in rep["errors"] if e["true"] is None]
    assert len(wrong_known) == round((1 - rep["rank1"]) * 16)
    assert len(strangers) == round(rep["fpir"] * 10)
    assert rep["n_errors"] == len(rep["errors"]) > 0  # a 0.2 threshold lets strangers in
    # intervals from resampling the 8 enrolled and 2 unknown people, each with its queries
    for key in ("rank1", "tpir_at_fpir_0.01"):
        lo, hi = rep[f"{key}_ci95"]
        assert 0 <= lo <= rep[key] <= hi <= 1, key
    assert "TPIR at FPIR 1 %" in res.output
    assert all(e["said"] != e["true"] for e in wrong_known)
    assert all(e["score"] >= 0.2 for e in strangers)
    sheet = cv2.imread(rep["errors_png"])
    assert sheet.shape[1] == min(3, rep["n_errors"]) * (3 * 112 + 8 + 6) + 6

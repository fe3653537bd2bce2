"""Metrics against cases small enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from maskface.eval.metrics import (
    calibration,
    classification_report,
    confusion_matrix,
    per_class_metrics,
    roc_auc,
    roc_curve,
    tar_at_far,
    threshold_at_far,
)


def test_roc_curve_steps_once_per_distinct_score():
    # Sorted by score: 0.9 (+), 0.8 (-), 0.8 (+), 0.1 (-). The tie at 0.8 is one step.
    curve = roc_curve([0.9, 0.8, 0.8, 0.1], [1, 0, 1, 0])
    assert curve.tpr.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert curve.fpr.tolist() == [0.0, 0.0, 0.5, 1.0]
    assert curve.thresholds[1:].tolist() == [0.9, 0.8, 0.1]


def test_roc_auc_is_the_pairwise_ranking_probability():
    # Positives {0.9, 0.8}, negatives {0.8, 0.1}: of the 4 pairs 3 are ordered, 1 tied (1/2).
    assert roc_auc([0.9, 0.8, 0.8, 0.1], [1, 0, 1, 0]) == pytest.approx(3.5 / 4)
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    rng = np.random.default_rng(0)
    s, y = rng.random(400), rng.random(400) < 0.3
    brute = np.mean([(a > b) + 0.5 * (a == b) for a in s[y] for b in s[~y]])
    assert roc_auc(s, y) == pytest.approx(brute)


def test_tar_at_far():
    scores = [0.95, 0.9, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]
    labels = [1, 1, 0, 1, 1, 0, 0, 0]
    # FAR 0: accept only above the best impostor (0.7): 2 of 4 genuine.
    assert tar_at_far(scores, labels, 0.0) == 0.5
    assert threshold_at_far(scores, labels, 0.0) == 0.9
    # FAR 0.25 allows one impostor: threshold 0.4 accepts all 4 genuine.
    assert tar_at_far(scores, labels, 0.25) == 1.0
    assert threshold_at_far(scores, labels, 0.25) == 0.4


def test_swapped_arguments_fail_loudly():
    with pytest.raises(ValueError, match="scores, labels"):
        roc_auc([1, 0, 1], [0.2, 0.9, 0.4])
    with pytest.raises(ValueError, match="both"):
        roc_curve([0.1, 0.2], [1, 1])


def test_confusion_and_per_class():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    m = per_class_metrics(cm)
    assert (m[0].precision, m[0].recall) == (1.0, pytest.approx(2 / 3))
    assert m[0].f1 == pytest.approx(0.8)
    assert (m[1].precision, m[1].recall, m[1].support) == (0.5, 0.5, 2)
    assert (m[2].precision, m[2].recall) == (0.5, 1.0)


def test_classification_report_binary_and_three_class():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
    rep = classification_report(probs, [0, 0, 1, 1], ["with_mask", "without_mask"])
    assert rep["accuracy"] == 0.75
    assert rep["confusion_matrix"] == [[2, 0], [1, 1]]
    # P(with_mask) for positives {0.9, 0.6} vs negatives {0.3, 0.55}: all 4 pairs ordered.
    assert rep["roc_auc"] == 1.0
    p3 = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.1, 0.4]])
    rep3 = classification_report(p3, [0, 1, 2, 2], ["a", "b", "c"])
    assert rep3["accuracy"] == 0.75
    assert set(rep3["roc_auc_per_class"]) == {"a", "b", "c"}
    assert rep3["roc_auc_per_class"]["b"] == 1.0
    # c vs rest: positives {0.6, 0.4} vs negatives {0.1, 0.1}: all ordered.
    assert rep3["roc_auc_per_class"]["c"] == 1.0


def test_calibration_by_hand():
    # Two answers at 0.95 (one right), two at 0.65 (both right): bins (0.9, 1] and (0.6, 0.7]
    # with gaps |0.5 - 0.95| and |1.0 - 0.65|; ECE weighs them by their counts (2 of 4 each).
    cal = calibration([0.95, 0.95, 0.65, 0.65], [True, False, True, True])
    assert [(b["low"], b["high"], b["n"]) for b in cal["bins"]] == [(0.6, 0.7, 2), (0.9, 1.0, 2)]
    assert cal["bins"][0]["accuracy"] == 1.0 and cal["bins"][1]["accuracy"] == 0.5
    assert cal["ece"] == pytest.approx(0.5 * 0.35 + 0.5 * 0.45)
    assert cal["mce"] == pytest.approx(0.45)
    assert cal["mean_confidence"] == pytest.approx(0.8) and cal["accuracy"] == 0.75


def test_calibration_of_a_calibrated_model_is_near_zero():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 20000)
    right = rng.uniform(size=conf.size) < conf  # right as often as it says
    assert calibration(conf, right)["ece"] < 0.02
    over = calibration(np.full(1000, 0.99), np.arange(1000) < 700)  # says 99 %, right 70 %
    assert over["ece"] == pytest.approx(0.29) and over["mean_confidence"] > over["accuracy"]
    assert calibration([], [])["ece"] is None

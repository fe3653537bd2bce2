"""The three-way rule: chosen on validation outputs, stored in and read from a graph."""

from __future__ import annotations

import numpy as np
import pytest

from maskface.train.three_way_rule import fallback, sweep


def _outputs(n_with: int, n_without: int, n_inc: int):
    """Two-class and three-class outputs of faces each head gets right with a margin."""
    p2 = np.array([[0.95, 0.05]] * n_with + [[0.1, 0.9]] * n_without + [[0.9, 0.1]] * n_inc,
                  np.float32)
    p3 = np.array([[0.65, 0.1, 0.25]] * n_with + [[0.1, 0.8, 0.1]] * n_without
                  + [[0.2, 0.2, 0.6]] * n_inc, np.float32)
    y = np.array([0] * n_with + [1] * n_without + [2] * n_inc)
    return [p2, p3], y


def test_sweep_keeps_the_constraint_and_breaks_ties_as_documented():
    outs, y = _outputs(6, 5, 4)
    real, _ = _outputs(3, 3, 0)
    real_labels = np.array(["with_mask"] * 3 + ["without_mask"] * 3)
    rows, best = sweep(outs, y, real, real_labels)
    assert len(rows) == 36
    # incorrect faces: r = 0.75 and q_incorrect 0.6, so with override 0.5 every threshold up
    # to 0.8 is perfect; ties go to the lower override, then the higher threshold
    assert best["ilc_val_macro_f1"] == 1.0
    assert (best["threshold"], best["override"]) == (0.8, 0.5)
    assert best["real_val_with_mask_called_incorrect"] == 0
    # with override 1.0 the override never fires: threshold 0.8 misses every incorrect face
    row = next(r for r in rows if (r["threshold"], r["override"]) == (0.8, 1.0))
    assert row["ilc_val_incorrect_recall"] == 0.0
    # incorrect faces that look like masks worn properly: nothing meets the constraint
    outs[1][y == 2] = [0.8, 0.1, 0.1]
    rows, best = sweep(outs, y, real, real_labels)
    assert best is None
    # stored instead: the best macro F1 (with the same tie-breaks), not a graph without a rule
    chosen = fallback(rows)
    assert chosen["ilc_val_macro_f1"] == max(r["ilc_val_macro_f1"] for r in rows)
    assert chosen["ilc_val_incorrect_recall"] < 0.75


def test_a_graph_carrying_its_rule_is_a_three_way_stage(tmp_path):
    pytest.importorskip("onnx", reason="writing ONNX metadata needs the 'train' extra")
    import onnx

    from maskface.classify import MaskClassifier
    from maskface.classify.three_way import COMPOSITES, RULE_KEY, three_way_probs
    from maskface.errors import ModelError
    from maskface.models import model_path
    from maskface.train.classifier import onnx_outputs
    from maskface.train.three_way_rule import clear_rule, store_rule

    # the registered float graph was written by a training run: it carries its rule, once
    model = onnx.load(str(model_path("mask_classifier_3way")))
    assert [p.key for p in model.metadata_props].count(RULE_KEY) == 1
    clear_rule(model)
    graph = tmp_path / "shared.onnx"
    onnx.save(model, str(graph))
    with pytest.raises(ModelError, match="no three-way rule"):
        MaskClassifier(graph)  # two outputs and no rule: refused, with the way out
    float_stage = MaskClassifier("mask_classifier_3way")
    crops = np.random.default_rng(0).integers(
        0, 255, (6, float_stage.input_size, float_stage.input_size, 3), dtype=np.uint8)
    # the registered rule: the registered stage's answers exactly
    store_rule(graph, *COMPOSITES["mask_classifier_3way"][1:])
    np.testing.assert_array_equal(MaskClassifier(graph).predict_proba(crops),
                                  float_stage.predict_proba(crops))
    store_rule(graph, 0.3, 0.9)  # replaced, not added
    clf = MaskClassifier(graph)
    assert (clf.three_way.threshold, clf.three_way.override) == (0.3, 0.9)
    np.testing.assert_allclose(clf.predict_proba(crops),
                               three_way_probs(*onnx_outputs(graph, crops), 0.3, 0.9), atol=1e-6)

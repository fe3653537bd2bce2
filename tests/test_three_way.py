"""The three-way default mask stage: the rule, the composite classifier, and its answers."""

from __future__ import annotations

import numpy as np
import pytest

from maskface.classify import MaskClassifier
from maskface.classify.three_way import three_way_probs
from maskface.models import MODELS


def _rule(p2, p3, t, u):
    """The rule as documented, written the plain way."""
    r = p3[:, 2] / (p3[:, 2] + p3[:, 0] + 1e-6)
    masked = p2[:, 0] > 0.5
    return np.where(p3[:, 2] > u, 2, np.where(masked, np.where(r > t, 2, 0), 1))


@pytest.mark.parametrize("t,u", [(0.7, 0.5), (0.3, 0.9), (0.9, 1.0)])
def test_argmax_is_the_rule_and_masked_mass_is_the_two_class_model(t, u):
    rng = np.random.default_rng(0)
    p2 = rng.dirichlet([0.3, 0.3], 20000).astype(np.float32)
    p3 = rng.dirichlet([0.3, 0.3, 0.3], 20000).astype(np.float32)
    p = three_way_probs(p2, p3, t, u)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert (p >= 0).all()
    assert (p.argmax(1) == _rule(p2, p3, t, u)).all()
    keep = p3[:, 2] <= u  # without the override, P(with) + P(incorrect) is P2(with)
    np.testing.assert_allclose(p[keep, 0] + p[keep, 2], p2[keep, 0], atol=1e-6)


def test_override_below_half_is_refused():
    with pytest.raises(ValueError):
        three_way_probs(np.ones((1, 2)) / 2, np.ones((1, 3)) / 3, 0.7, 0.4)


def test_shipped_default_is_the_rule_over_one_graph_whose_masked_call_is_the_two_class_model(
        astronaut):
    """On real crops (the astronaut, shifted and scaled) the default's output is the rule, with
    the card's threshold and override, over its one graph's two outputs; the first output is
    the registered two-class model's own, bit for bit (the branch alone is int8), and the
    branch stays close to the float branch it was quantised from."""
    import json

    from maskface.classify.classifier import DEFAULT_MODEL
    from maskface.classify.three_way import COMPOSITES, RULE_KEY, rule_from_metadata
    from maskface.models import model_path, ort_session

    clf = MaskClassifier()
    assert DEFAULT_MODEL == "mask_classifier_3way_int8" and DEFAULT_MODEL in MODELS
    assert clf.labels == ("with_mask", "without_mask", "mask_incorrect")
    card = json.loads(model_path(DEFAULT_MODEL).with_name(
        f"{DEFAULT_MODEL}.card.json").read_text())
    rule = card["rule"]
    assert COMPOSITES[DEFAULT_MODEL][1:] == (rule["threshold"], rule["override"])
    meta = ort_session(DEFAULT_MODEL).get_modelmeta().custom_metadata_map
    assert RULE_KEY in meta and rule_from_metadata(meta) == COMPOSITES[DEFAULT_MODEL][1:]
    boxes = np.array([[x, y, x + s, y + s] for s in (80, 140, 220) for x in (150, 190)
                      for y in (40, 90)], np.float64)
    crops = clf.crops(astronaut, boxes)
    p = clf.predict_proba(crops)
    x = crops.astype(np.float32).transpose(0, 3, 1, 2)
    p2, p3 = ort_session(DEFAULT_MODEL).run(None, {"image": x})
    f2, f3 = ort_session("mask_classifier_3way").run(None, {"image": x})
    np.testing.assert_array_equal(p2, f2)
    np.testing.assert_allclose(p2, MaskClassifier("mask_classifier").predict_proba(crops),
                               atol=1e-5)
    np.testing.assert_allclose(p3, f3, atol=0.05)
    assert (p3.argmax(1) == f3.argmax(1)).all()
    np.testing.assert_allclose(p, three_way_probs(p2, p3, rule["threshold"], rule["override"]),
                               atol=1e-6)


def test_pipeline_says_three_ways_on_the_astronaut(astronaut):
    """The default pipeline: bare -> without_mask, correctly worn -> with_mask, nose exposed
    and chin only -> mask_incorrect (the nose-exposed case is the one the old synthetic-only
    three-class model missed)."""
    pytest.importorskip("mediapipe", reason="the synth extra draws the masks")
    from maskface.pipeline import Pipeline
    from maskface.synth import MaskStyle, apply_mask

    pipe = Pipeline(classifier="default")
    assert pipe.classifier.labels == ("with_mask", "without_mask", "mask_incorrect")
    face = pipe.analyze(astronaut).faces[0]
    assert face.mask.label == "without_mask"
    labels = {}
    for wear in ("correct", "chin_only", "nose_exposed"):
        masked = apply_mask(astronaut, face, MaskStyle(mask_type="cloth", wear=wear, seed=1))
        labels[wear] = pipe.analyze(masked).faces[0].mask.label
    assert labels == {"correct": "with_mask", "chin_only": "mask_incorrect",
                      "nose_exposed": "mask_incorrect"}


def test_eval_reports_masked_and_kiosk_views_of_two_class_data():
    """A three-class model on with/without data: mask_incorrect counts as masked in the masked
    view and as refused in the kiosk view."""
    from maskface.eval.classifier import LabelledCrops, evaluate_crops

    class Stub:
        labels = ("with_mask", "without_mask", "mask_incorrect")

        def predict_proba(self, crops):
            return np.array([[0.8, 0.1, 0.1],    # with -> with: right in both views
                             [0.2, 0.1, 0.7],    # with -> incorrect: masked yes, kiosk no
                             [0.1, 0.3, 0.6],    # without -> incorrect: masked no, kiosk yes
                             [0.1, 0.8, 0.1]],   # without -> without: right in both
                            np.float32)

    data = LabelledCrops(np.zeros((4, 8, 8, 3), np.uint8),
                         ["with_mask", "with_mask", "without_mask", "without_mask"],
                         ["s"] * 4, [f"f{i}" for i in range(4)], [])
    report, _ = evaluate_crops(Stub(), data)
    assert report["accuracy"] == 0.5
    assert report["masked_view"]["confusion_matrix"] == [[2, 0], [1, 1]]
    assert report["kiosk_view"]["confusion_matrix"] == [[1, 1], [0, 2]]


@pytest.mark.data
@pytest.mark.slow
def test_the_shipped_int8_graph_is_remade_from_the_float_graph(data_dir, tmp_path, astronaut):
    """The card's command (scripts/quantize_classifier.py --only-branch, 400 synthetic training
    crops) remade from the registered float graph answers like the shipped file: the two-class
    output the float graph's, bit for bit; the branch the shipped int8 branch's."""
    onnx = pytest.importorskip("onnx", reason="quantising needs the 'train' extra")
    from maskface.models import model_bytes, ort_session
    from maskface.train.classifier import onnx_outputs
    from maskface.train.quantize import calibration_crops, quantize_branch

    folder = data_dir / "mask-crops" / "synthetic" / "train"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    from maskface.io.sources import image_files

    out = quantize_branch(onnx.load_from_string(model_bytes("mask_classifier_3way")),
                          tmp_path / "int8.onnx", calibration_crops(image_files(folder), 96, 400))
    clf = MaskClassifier()
    boxes = np.array([[x, y, x + s, y + s] for s in (80, 140, 220) for x in (150, 190)
                      for y in (40, 90)], np.float64)
    crops = clf.crops(astronaut, boxes)
    x = crops.astype(np.float32).transpose(0, 3, 1, 2)
    p2, p3 = onnx_outputs(out, crops)
    f2, _ = ort_session("mask_classifier_3way").run(None, {"image": x})
    s2, s3 = ort_session("mask_classifier_3way_int8").run(None, {"image": x})
    np.testing.assert_array_equal(p2, f2)
    np.testing.assert_array_equal(s2, f2)
    np.testing.assert_allclose(p3, s3, atol=1e-3)

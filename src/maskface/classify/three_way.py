"""The three-way default mask decision: one graph with two heads, one rule.

The two-class head decides masked vs not; the three-class head decides, among masked faces,
whether the mask is worn incorrectly. With ``q`` the three-class probabilities and
``r = q_incorrect / (q_incorrect + q_with)``:

* ``mask_incorrect`` when the two-class head says masked and ``r > threshold``, or when
  ``q_incorrect > override`` (a chin-worn mask can look unmasked to the two-class model);
* otherwise the two-class answer.

The shipped default (``mask_classifier_3way_int8``, :data:`COMPOSITES`) is one graph: the
two-class model ``mask_classifier`` whole, and a three-class branch trained on its first 13
blocks (frozen), so those run once per crop (``maskface train classifier --init
mask_classifier --frozen-blocks 13 --int8-branch`` writes it), the branch in int8. Its first
output *is* the two-class model's, bit for bit. The rule is applied
here (:class:`maskface.classify.MaskClassifier`); the result is a probability vector whose argmax
*is* the rule, so every consumer (pipeline, evaluation, service) reads it like any other
classifier. The masked probability ``P(with) + P(incorrect)`` is the two-class ``P(with_mask)``
(raised to ``q_incorrect`` where the override fires), and it is split between ``with_mask`` and
``mask_incorrect`` by ``r``, capped so that the chosen class comes first. A composite can also
name two separate networks (two-class, then three-class).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: output order of the three-way model
THREE_WAY_LABELS = ("with_mask", "without_mask", "mask_incorrect")


class ThreeWay(NamedTuple):
    """A three-way mask stage: its registered models and the rule's parameters. ``models`` is
    one graph with both outputs (two-class ``probs``, three-class ``branch_probs``) or the
    two networks."""

    models: tuple[str, ...]
    threshold: float
    override: float


#: composite mask stages by name; the default's threshold and override were chosen on the
#: ilc2021 and real-crop validation splits (maskface.train.three_way_rule,
#: mask_classifier_3way.card.json)
COMPOSITES = {
    "mask_classifier_3way": ThreeWay(("mask_classifier_3way",), 0.5, 0.5),
    # the same graph with its branch in int8, made from it by scripts/quantize_classifier.py,
    # which carries this rule over (mask_classifier_3way_int8.card.json)
    "mask_classifier_3way_int8": ThreeWay(("mask_classifier_3way_int8",), 0.5, 0.5),
}

#: ONNX metadata key of a shared graph's own rule (``{"threshold": t, "override": o}``),
#: written by ``maskface train classifier``: such a file is a three-way stage by itself
RULE_KEY = "three_way_rule"


def rule_from_metadata(meta: dict[str, str]) -> tuple[float, float] | None:
    """``(threshold, override)`` stored in an ONNX file's metadata, if any."""
    import json

    raw = meta.get(RULE_KEY)
    if raw is None:
        return None
    rule = json.loads(raw)
    return float(rule["threshold"]), float(rule["override"])


def three_way_probs(p2: np.ndarray, p3: np.ndarray, threshold: float, override: float
                    ) -> np.ndarray:
    """``(N, 3)`` probabilities (with, without, incorrect) from the two-class ``p2``
    (with, without) and three-class ``p3`` (with, without, incorrect) outputs."""
    if override < 0.5:
        raise ValueError("override must be at least 0.5 (it must make the face masked)")
    p2 = np.asarray(p2, np.float32)
    p3 = np.asarray(p3, np.float32)
    m = p2[:, 0]
    qw, qi = p3[:, 0], p3[:, 2]
    r = qi / (qi + qw + np.float32(1e-6))
    ov = qi > override
    m = np.where(ov, np.maximum(m, qi), m)
    r = np.where(ov, np.float32(1.0), r)
    inc = r > threshold
    share = np.where(inc, r, 1 - r)                       # the chosen masked class's share
    cap = np.where(m > 0.5, np.minimum(np.float32(0.4999) * m, np.float32(0.999) * (2 * m - 1)), m)
    other = np.minimum(m * (1 - share), cap)
    chosen = m - other
    return np.stack([np.where(inc, other, chosen), 1 - m, np.where(inc, chosen, other)],
                    axis=1).astype(np.float32)

"""Reports are strict JSON: undefined figures are null, never the bare words NaN/Infinity."""

from __future__ import annotations

import json

import numpy as np

from maskface.jsonfile import finite, write_json


def test_undefined_figures_become_null(tmp_path):
    data = {"auc": float("nan"), "ratio": float("inf"), "neg": -float("inf"),
            "np": np.float32("nan"), "ok": np.float64(0.25), "n": np.int64(3),
            "rows": [1.5, float("nan"), {"x": (float("nan"), 2)}], "name": "a", "none": None}
    path = write_json(tmp_path / "r.json", data)

    def refuse(word):
        raise ValueError(word)

    back = json.loads(path.read_text(), parse_constant=refuse)
    assert back == {"auc": None, "ratio": None, "neg": None, "np": None, "ok": 0.25, "n": 3,
                    "rows": [1.5, None, {"x": [None, 2]}], "name": "a", "none": None}
    assert finite(float("nan")) is None and finite(1.0) == 1.0

"""The model registry: every shipped or carried file is found and digest-checked."""

from __future__ import annotations

import shutil

import pytest

from maskface import models
from maskface.errors import ModelError


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_registered_models_verify(name):
    spec = models.MODELS[name]
    blob = models.model_bytes(name)
    assert len(blob) > 1000
    if spec.kind == "file":
        assert models.sha256_file(models.model_path(name)) == spec.sha256


def test_altered_file_is_refused(tmp_path, monkeypatch):
    spec = models.MODELS["yunet"]
    src = models.model_path("yunet")
    fake_root = tmp_path / "weights"
    fake_root.mkdir()
    altered = fake_root / "yunet.onnx"
    shutil.copy(src, altered)
    with open(altered, "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    monkeypatch.setattr(models, "_WEIGHTS_DIR", fake_root)
    models.register(models.ModelSpec("altered", "test", spec.sha256, None, "yunet.onnx"))
    try:
        with pytest.raises(ModelError, match="SHA-256"):
            models.model_path("altered")
    finally:
        del models.MODELS["altered"]


def test_missing_carrier_names_package_to_install():
    models.register(models.ModelSpec("ghost", "test", "0" * 64, "no_such_carrier_pkg", "x.onnx",
                                     "no-such-carrier==1.0"))
    try:
        with pytest.raises(ModelError, match="pip install no-such-carrier==1.0"):
            models.model_path("ghost")
    finally:
        del models.MODELS["ghost"]


def test_unknown_model_name():
    with pytest.raises(ModelError, match="unknown model"):
        models.model_path("nope")


def test_models_cli_says_where_each_file_is():
    """Its help promised where the files are; it printed only names and descriptions."""
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    res = CliRunner().invoke(load_commands(), ["models"])
    assert res.exit_code == 0, res.output
    for row in models.describe():
        assert f"\n    {row['path']}\n" in res.output

"""Shared fixtures. Tests that need ../shared/data skip with a clear reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("MASKFACE_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _no_real_default_store(tmp_path_factory):
    """A command run without --db uses $MASKFACE_DB or ~/.local/share/maskface/gallery.db:
    under test that is a throw-away folder, never the gallery of whoever runs the suite."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MASKFACE_DB", raising=False)
        mp.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
        yield


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root} (set MASKFACE_DATA to run data tests)")
    return root


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    from maskface.cli.detect import demo_image

    return demo_image()


@pytest.fixture(scope="session")
def astronaut(astronaut_path) -> np.ndarray:
    from maskface.io import load_image

    return load_image(astronaut_path)

"""Contact sheet: before/after thumbnails with the style name, to inspect a run by eye."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from maskface.draw import image_grid, thumbnail, write_image
from maskface.io import load_image


def contact_sheet(pairs: Sequence[tuple[np.ndarray, np.ndarray, str]], columns: int = 4,
                  height: int = 128) -> np.ndarray:
    """A grid of ``(before, after, label)`` pairs, each pair side by side over its label."""
    if not pairs:
        return np.full((height, height, 3), 255, np.uint8)
    gap = np.full((height, 2, 3), 255, np.uint8)
    return image_grid([(np.hstack([thumbnail(a, height), gap, thumbnail(b, height)]), [label])
                       for a, b, label in pairs], columns)


def write_contact_sheet(path: str | Path, items: Sequence[tuple[str | Path, str | Path, str]],
                        columns: int = 4, height: int = 128) -> Path:
    """Load ``(source, output, label)`` image paths and write their contact sheet to ``path``."""
    pairs = [(load_image(src), load_image(out), label) for src, out, label in items]
    return write_image(path, contact_sheet(pairs, columns, height))

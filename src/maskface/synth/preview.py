"""Contact sheet: before/after thumbnails with the style name, to inspect a run by eye."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from maskface.draw import drawable
from maskface.io import load_image


def _thumb(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` fitted into a white ``size`` x ``size`` square (aspect ratio kept)."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, (nw, nh), interpolation=interp)
    out = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - nh) // 2, (size - nw) // 2
    out[y : y + nh, x : x + nw] = small
    return out


def contact_sheet(pairs: Sequence[tuple[np.ndarray, np.ndarray, str]], columns: int = 4,
                  height: int = 128) -> np.ndarray:
    """A grid of ``(before, after, label)`` pairs, each pair side by side over its label."""
    if not pairs:
        return np.full((height, height, 3), 255, np.uint8)
    label_h = 18
    cells = []
    for before, after, label in pairs:
        a, b = _thumb(before, height), _thumb(after, height)
        pair = np.hstack([a, np.full((height, 2, 3), 255, np.uint8), b])
        strip = np.full((label_h, pair.shape[1], 3), 255, np.uint8)
        scale = 0.38
        text = drawable(label)
        # Shorten long labels to the pair's width.
        while len(text) > 4 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale,
                                                1)[0][0] > pair.shape[1] - 4:
            text = text[:-3] + ".."
        cv2.putText(strip, text, (2, label_h - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20),
                    1, cv2.LINE_AA)
        cells.append(np.vstack([pair, strip]))
    cw = max(c.shape[1] for c in cells)
    ch = height + label_h
    pad = 6
    rows = (len(cells) + columns - 1) // columns
    sheet = np.full((rows * (ch + pad) + pad, columns * (cw + pad) + pad, 3), 255, np.uint8)
    for k, cell in enumerate(cells):
        r, c = divmod(k, columns)
        y, x = pad + r * (ch + pad), pad + c * (cw + pad)
        sheet[y : y + cell.shape[0], x : x + cell.shape[1]] = cell
    return sheet


def write_contact_sheet(path: str | Path, items: Sequence[tuple[str | Path, str | Path, str]],
                        columns: int = 4, height: int = 128) -> Path:
    """Load ``(source, output, label)`` image paths and write their contact sheet to ``path``."""
    pairs = [(load_image(src), load_image(out), label) for src, out, label in items]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(pairs, columns, height)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 9] if path.suffix.lower() == ".png" else []
    if not cv2.imwrite(str(path), sheet, params):
        raise OSError(f"cannot write {path}")
    return path

"""Benchmark images: a folder of photos fitted to one frame size, or a built-in set made from
the public-domain astronaut photo with 1, 2 and 3 faces (copies of her face pasted in)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from maskface.errors import InputError
from maskface.io.image import decode_image


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to cover ``size`` (width, height) and crop the centre: a camera frame."""
    w, h = size
    ih, iw = image.shape[:2]
    s = max(w / iw, h / ih)
    nw, nh = max(w, round(iw * s)), max(h, round(ih * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (nw, nh), interpolation=interp)
    x0, y0 = (nw - w) // 2, (nh - h) // 2
    return np.ascontiguousarray(scaled[y0 : y0 + h, x0 : x0 + w])


def builtin_images(size: tuple[int, int] = (640, 480), masked: bool = False
                   ) -> list[np.ndarray]:
    """Three frames of ``size`` with 1, 2 and 3 faces (``masked``: the astronaut wearing the
    built-in synthetic mask, so the masked recognition path is timed end to end)."""
    from maskface.cli.detect import DEMO_IMAGES, demo_image
    from maskface.io import load_image

    base = fit(load_image(demo_image(DEMO_IMAGES[1 if masked else 0])), size)
    w, h = size
    # The astronaut's face in the fitted frame, with a margin (fractions of the frame).
    fx1, fy1, fx2, fy2 = (int(0.34 * w), int(0.02 * h), int(0.56 * w), int(0.40 * h))
    face = base[fy1:fy2, fx1:fx2]
    frames = [base.copy()]
    spots = [(0.02, 0.45), (0.70, 0.40)]  # top-left corners of the pasted copies
    img = base.copy()
    for k, (sx, sy) in enumerate(spots):
        scale = 0.8 if k == 0 else 0.65
        patch = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        x, y = int(sx * w), int(sy * h)
        ph, pw = patch.shape[:2]
        ph, pw = min(ph, h - y), min(pw, w - x)
        img[y : y + ph, x : x + pw] = patch[:ph, :pw]
        frames.append(img.copy())
    return frames


def folder_images(folder: Path, size: tuple[int, int], limit: int = 50) -> list[np.ndarray]:
    """Up to ``limit`` images of ``folder`` (sorted), each fitted to ``size``."""
    from maskface.io.sources import image_files

    paths = image_files(Path(folder))
    if not paths:
        raise InputError(f"{folder}: no images found")
    return [fit(decode_image(p.read_bytes(), str(p)), size) for p in paths[:limit]]


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR image (the decode stage times decoding these)."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InputError("cannot encode benchmark image")
    return buf.tobytes()


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)``."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"size '{text}' is not WIDTHxHEIGHT, e.g. 640x480") from None
    if w < 32 or h < 32:
        raise InputError(f"size '{text}' is too small")
    if w > 8192 or h > 8192:  # an 8K frame is the largest a camera gives; more is a typo
        raise InputError(f"size '{text}' is too large (at most 8192 a side)")
    return w, h

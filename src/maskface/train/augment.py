"""Training augmentation in numpy/OpenCV: what a kiosk camera and a face detector do to a face.

The classifier sees ``face_crop(image, box, S, CROP_SCALE)`` at inference: a square around a
detector box. Training folders hold face crops that are already cut out, so evaluation uses
``whole_image_crop`` and training jitters that square's scale, centre and angle to mimic
detector box noise, then adds flips, colour, blur, greyscale and JPEG artefacts. Each step is
one or two OpenCV/numpy calls on the small output crop: on a shared 2-core machine the
augmentation must cost far less than the network's training step.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms (probabilities are per image)."""

    scale: tuple[float, float] = (0.85, 1.35)  # crop side relative to the image's longer side
    shift: float = 0.08  # centre jitter, fraction of the crop side
    rotate_deg: float = 12.0
    flip: float = 0.5
    brightness: float = 0.25  # multiplicative, +-
    contrast: float = 0.25
    saturation: float = 0.35
    blur: float = 0.2
    grey: float = 0.08
    jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (35, 90)
    #: faces in scene photos are often 15-40 px wide and get upsampled by ``face_crop``
    low_res: float = 0.35
    low_res_side: tuple[int, int] = (12, 64)


def jitter_crop(image: np.ndarray, size: int, rng: np.random.Generator,
                cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """A ``size`` x ``size`` view of a face-crop image: the square ``whole_image_crop`` would
    take, randomly scaled, shifted, rotated and mirrored (one affine warp; edges replicated as
    ``face_crop`` does)."""
    h, w = image.shape[:2]
    side = max(h, w) * rng.uniform(*cfg.scale)
    cx, cy = w / 2 + rng.uniform(-cfg.shift, cfg.shift) * side, \
        h / 2 + rng.uniform(-cfg.shift, cfg.shift) * side
    angle = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    k = size / side
    flip = -1.0 if rng.random() < cfg.flip else 1.0
    ca, sa = np.cos(angle) * k, np.sin(angle) * k
    # Output pixel = R * (input - centre) + size/2, with an optional mirror on x.
    m = np.array([[flip * ca, flip * sa, 0.0], [-sa, ca, 0.0]])
    m[:, 2] = np.array([size / 2, size / 2]) - m[:, :2] @ np.array([cx, cy])
    interp = cv2.INTER_AREA if k < 0.7 else cv2.INTER_LINEAR
    if k < 0.5:  # warpAffine does not low-pass: shrink first so small outputs do not alias
        f = 2 * k
        image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        m[:, :2] /= f
    return cv2.warpAffine(image, m, (size, size), flags=interp,
                          borderMode=cv2.BORDER_REPLICATE)


def photometric(crop: np.ndarray, rng: np.random.Generator,
                cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """Brightness, contrast, saturation, blur, low resolution, greyscale and JPEG re-encoding
    (BGR uint8)."""
    f = crop.astype(np.float32)
    grey = f @ np.array([0.114, 0.587, 0.299], np.float32)
    if rng.random() < cfg.grey:
        f = np.repeat(grey[..., None], 3, axis=2)
    else:
        s = 1 + rng.uniform(-cfg.saturation, cfg.saturation)
        f = grey[..., None] + s * (f - grey[..., None])
    c = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
    b = 1 + rng.uniform(-cfg.brightness, cfg.brightness)
    mean = float(grey.mean())
    out = np.clip(((f - mean) * c + mean) * b, 0, 255).astype(np.uint8)
    if rng.random() < cfg.blur:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.5, 1.2))
    if rng.random() < cfg.low_res:
        # A small face upsampled to the input size, as face_crop does for distant faces.
        size = out.shape[0]
        side = int(rng.integers(cfg.low_res_side[0], min(cfg.low_res_side[1], size) + 1))
        small = cv2.resize(out, (side, side), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < cfg.jpeg:
        q = int(rng.integers(*cfg.jpeg_quality))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


def augment(image: np.ndarray, size: int, rng: np.random.Generator,
            cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """One random training view of a face-crop image, ``size`` x ``size`` BGR uint8."""
    return photometric(jitter_crop(image, size, rng, cfg), rng, cfg)

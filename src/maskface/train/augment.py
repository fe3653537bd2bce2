"""Training augmentation in numpy/OpenCV: what a kiosk camera and a face detector do to a face.

The classifier sees ``face_crop(image, box, S, CROP_SCALE)`` at inference: a square around a
detector box. Training folders hold face crops that are already cut out, so evaluation uses
``whole_image_crop`` and training jitters that square's scale, centre and angle to mimic
detector box noise, then adds flips, colour, blur, greyscale and JPEG artefacts; the
``camera`` preset adds what street and crowd cameras deliver (small faces, low light, colour
casts, hands near the mouth). Each step is
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
    #: street and crowd cameras (all off in the base recipe): a dark, noisy exposure
    low_light: float = 0.0
    #: white-balance error: per-channel gains within 1 +- this
    colour_cast: float = 0.0
    colour_cast_p: float = 0.0
    #: a skin-toned hand-like blob over the lower face (the label does not change: a hand is
    #: not a mask)
    occlusion: float = 0.0


#: the base recipe of the shipped two-class model
BASE = AugmentConfig()
#: what street/crowd cameras deliver: faces of 16-48 px upsampled, more blur, JPEG, low light,
#: colour casts, hands near the mouth
CAMERA = AugmentConfig(blur=0.3, jpeg=0.45, jpeg_quality=(25, 90), low_res=0.5,
                       low_res_side=(16, 48), low_light=0.2, colour_cast=0.15,
                       colour_cast_p=0.3, occlusion=0.12)
PRESETS = {"base": BASE, "camera": CAMERA}


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
    if rng.random() < cfg.colour_cast_p:
        gains = 1 + rng.uniform(-cfg.colour_cast, cfg.colour_cast, 3)
        out = np.clip(out * gains.astype(np.float32), 0, 255).astype(np.uint8)
    if rng.random() < cfg.low_light:
        # Underexposed: a gamma curve darkens the mid-tones, then sensor noise on top.
        gamma = rng.uniform(1.4, 2.6)
        dark = 255.0 * (out / 255.0) ** gamma
        dark += rng.normal(0, rng.uniform(2, 8), dark.shape)
        out = np.clip(dark, 0, 255).astype(np.uint8)
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


def occlude(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A hand-like blob (an ellipse of the face's own skin tone, shaded, soft edge) over the
    mouth or cheek region of a centred face crop."""
    size = crop.shape[0]
    # Skin tone from the cheeks/forehead band, jittered a little in brightness.
    band = crop[int(size * 0.3): int(size * 0.45), int(size * 0.3): int(size * 0.7)]
    tone = np.median(band.reshape(-1, 3), axis=0) * rng.uniform(0.85, 1.15)
    cx = size * rng.uniform(0.3, 0.7)
    cy = size * rng.uniform(0.55, 0.85)
    axes = (int(size * rng.uniform(0.12, 0.25)), int(size * rng.uniform(0.08, 0.16)))
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(-40, 40), 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, size / 64))[..., None]
    shade = np.linspace(1.1, 0.85, size, dtype=np.float32)[:, None, None]
    hand = np.clip(tone.astype(np.float32) * shade, 0, 255)
    return (crop * (1 - mask) + hand * mask).astype(np.uint8)


def augment(image: np.ndarray, size: int, rng: np.random.Generator,
            cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """One random training view of a face-crop image, ``size`` x ``size`` BGR uint8."""
    crop = jitter_crop(image, size, rng, cfg)
    if cfg.occlusion and rng.random() < cfg.occlusion:
        crop = occlude(crop, rng)
    return photometric(crop, rng, cfg)

"""Procedural mask textures, drawn in a canonical ``(u, v)`` rectangle.

``u`` runs across the mask (image-left to image-right, 0.5 at the nose), ``v`` from the top edge
to the bottom edge. :mod:`maskface.synth.apply` warps the texture onto the face. Each texture
is the mask's colour times a shading field (pleats, seams, cup curvature, edge bindings) plus a
little fabric noise, so the mask is not a flat patch of colour.
"""

from __future__ import annotations

import cv2
import numpy as np

from maskface.synth.styles import MaskStyle

#: height / width of the canonical texture (a worn mask is about 0.6 times as tall as wide)
ASPECT = 0.62


def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    u = (np.arange(w, dtype=np.float32) + 0.5) / w
    v = (np.arange(h, dtype=np.float32) + 0.5) / h
    return np.meshgrid(u, v)


def _gauss(x: np.ndarray, width: float) -> np.ndarray:
    return np.exp(-((x / width) ** 2))


def _noise(rng: np.random.Generator, h: int, w: int, sigma: float, blur: float) -> np.ndarray:
    n = rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
    if blur > 0:
        n = cv2.GaussianBlur(n, (0, 0), blur)
        n /= max(float(n.std()), 1e-6)
    return n * sigma


def _edge_distance(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Distance (in u units) to the nearest rectangle edge, with v scaled by the aspect ratio."""
    return np.minimum(np.minimum(u, 1 - u), np.minimum(v, 1 - v) * ASPECT)


def _surgical(u, v, rng, style: MaskStyle) -> tuple[np.ndarray, np.ndarray | None]:
    shade = np.ones_like(u)
    pleat_zone = np.clip((np.minimum(u, 1 - u) - 0.04) / 0.06, 0, 1)  # pleats fade at the sides
    for vc in (0.33, 0.51, 0.69):
        vc = vc + rng.uniform(-0.015, 0.015)
        # The flap above each fold bulges towards the light, then the fold casts a thin shadow.
        rise = np.clip((v - (vc - 0.11)) / 0.11, 0, 1) * (v < vc)
        shade += pleat_zone * (0.09 * rise - 0.24 * _gauss(v - vc, 0.012))
    band = (v < 0.07) | (v > 0.93) | (u < 0.04) | (u > 0.96)
    shade = np.where(band, shade * 1.04, shade)
    # Stitch rows along the top and bottom bindings.
    stitches = (np.sin(u * 2 * np.pi * 70) > 0.6) & (
        (np.abs(v - 0.045) < 0.006) | (np.abs(v - 0.955) < 0.006))
    shade = np.where(stitches, shade * 0.88, shade)
    # Nose wire: a faint ridge under the top binding.
    wire = (np.abs(u - 0.5) < 0.11) & (np.abs(v - 0.03) < 0.012)
    shade = np.where(wire, shade * 0.93, shade)
    # Cylindrical fall-off: the sides turn away from the camera.
    shade *= 0.86 + 0.14 * np.cos((u - 0.5) * np.pi * 0.95)
    return shade, None


def _n95(u, v, rng, style: MaskStyle) -> tuple[np.ndarray, np.ndarray | None]:
    du, dv = (u - 0.5) / 0.5, (v - 0.52) / 0.55
    r2 = du**2 + dv**2
    shade = 1.0 - 0.2 * r2 + 0.08 * _gauss(np.sqrt((u - 0.45) ** 2 + (v - 0.35) ** 2), 0.2)
    rim = _edge_distance(u, v)
    shade = np.where(rim < 0.035, shade * 0.9, shade)
    shade -= 0.1 * _gauss(rim - 0.035, 0.004)
    # Metal nose strip.
    strip = (np.abs(u - 0.5) < 0.12) & (np.abs(v - 0.07) < 0.022)
    shade = np.where(strip, shade * 0.82, shade)
    return shade, None


def _kn95(u, v, rng, style: MaskStyle) -> tuple[np.ndarray, np.ndarray | None]:
    light = rng.choice([-1.0, 1.0])
    # Two folded panels meet at the centre seam, one facing the light more than the other.
    shade = 1.0 + light * 0.06 * np.tanh((u - 0.5) / 0.08)
    shade -= 0.28 * _gauss(u - 0.5, 0.006)
    shade += 0.08 * _gauss(u - 0.5 - light * 0.012, 0.01)
    shade *= 0.88 + 0.12 * np.cos((u - 0.5) * np.pi * 0.95)
    # Heat-welded edge: a band of small embossed dots.
    rim = _edge_distance(u, v)
    dots = (np.sin(u * 2 * np.pi * 60) * np.sin(v * 2 * np.pi * 40 * ASPECT) > 0.5) & (rim < 0.04)
    shade = np.where(rim < 0.04, shade * 0.95, shade)
    shade = np.where(dots, shade * 0.9, shade)
    return shade, None


def _cloth(u, v, rng, style: MaskStyle, w: int, h: int) -> tuple[np.ndarray, np.ndarray | None]:
    shade = 0.86 + 0.14 * np.cos((u - 0.5) * np.pi * 0.95)
    # Centre seam of a two-panel cloth mask, and the hem.
    shade -= 0.22 * _gauss(u - 0.5, 0.006)
    shade += 0.05 * np.tanh((0.5 - np.abs(u - 0.5)) / 0.15) - 0.05
    shade = np.where(_edge_distance(u, v) < 0.03, shade * 0.9, shade)
    # Weave: fine noise across and along the threads.
    shade += _noise(rng, h, w, 0.025, 0.6)
    accent = None
    phase = rng.uniform(0, 1)
    if style.pattern == "stripes":
        period = rng.uniform(0.1, 0.18)
        coord = v if rng.random() < 0.6 else (u + v * ASPECT) * 0.7
        accent = (((coord / period + phase) % 1.0) < 0.4).astype(np.float32)
    elif style.pattern == "dots":
        period = rng.uniform(0.07, 0.11)
        gu = ((u / period + phase) % 1.0) - 0.5
        gv = ((v * ASPECT / period + phase) % 1.0) - 0.5
        accent = (gu**2 + gv**2 < 0.27**2).astype(np.float32)
    elif style.pattern == "check":
        period = rng.uniform(0.09, 0.15)
        a = ((u / period + phase) % 1.0) < 0.5
        b = ((v * ASPECT / period + phase) % 1.0) < 0.5
        accent = 0.5 * a + 0.5 * b
    return shade, accent


def render_texture(style: MaskStyle, width: int, rng: np.random.Generator | None = None
                   ) -> np.ndarray:
    """The mask's texture, ``(round(width * ASPECT), width, 3)`` float32 BGR in about 0..1."""
    rng = rng if rng is not None else np.random.default_rng(style.seed)
    w = max(16, int(width))
    h = max(10, round(w * ASPECT))
    u, v = _grid(w, h)
    base = np.broadcast_to(style.bgr(), (h, w, 3)).astype(np.float32)
    if style.mask_type == "surgical":
        shade, extra = _surgical(u, v, rng, style)
    elif style.mask_type == "n95":
        shade, extra = _n95(u, v, rng, style)
    elif style.mask_type == "kn95":
        shade, extra = _kn95(u, v, rng, style)
    else:
        shade, extra = _cloth(u, v, rng, style, w, h)
    if extra is not None:
        # extra is the pattern's accent coverage 0..1
        base = base * (1 - extra[..., None]) + style.accent_bgr() * extra[..., None]
    if style.mask_type != "cloth":
        shade = shade + _noise(rng, h, w, 0.012, 0.7)  # non-woven fibres
    return (base * shade[..., None]).astype(np.float32)

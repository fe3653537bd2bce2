"""Put a synthetic mask on a face: ``apply_mask(image, face, style) -> image``."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from maskface.errors import InputError
from maskface.results import Face
from maskface.synth.draw import render_texture
from maskface.synth.landmarks import N_POINTS, DenseLandmarks, FaceLandmarker
from maskface.synth.shape import MaskOutline, mask_outline, template_anchors
from maskface.synth.styles import MaskStyle
from maskface.synth.templates import TemplateSet, warp_template
from maskface.synth.warp import grid_remap

#: colour of ear loops / straps (BGR 0..1): white elastic for most masks, black for black ones
_LOOP_WHITE = np.array([0.93, 0.93, 0.92], np.float32)
_LOOP_BLACK = np.array([0.15, 0.15, 0.15], np.float32)

_default_landmarker: FaceLandmarker | None = None
_default_lock = threading.Lock()


class NoLandmarksError(InputError):
    """The landmarker found no face where the detector put one."""


def default_landmarker() -> FaceLandmarker:
    """A process-wide landmarker, built on first use."""
    global _default_landmarker
    with _default_lock:
        if _default_landmarker is None:
            _default_landmarker = FaceLandmarker()
        return _default_landmarker


def dense_landmarks(image: np.ndarray, face: Face | DenseLandmarks | np.ndarray,
                    landmarker: FaceLandmarker | None = None) -> DenseLandmarks:
    """Dense landmarks for ``face``: given directly, or found by the landmarker in its box."""
    if isinstance(face, DenseLandmarks):
        return face
    if isinstance(face, np.ndarray):
        pts = np.asarray(face, np.float32)
        if pts.shape != (N_POINTS, 2):
            raise InputError(f"dense landmarks must be ({N_POINTS}, 2), got {pts.shape}")
        return DenseLandmarks(pts, np.zeros(N_POINTS, np.float32))
    if isinstance(face, Face):
        lm = (landmarker or default_landmarker()).landmarks(image, face.box)
        if lm is None:
            raise NoLandmarksError("the landmarker found no face in the detected box")
        return lm
    raise InputError(f"face must be a Face, DenseLandmarks or (478, 2) array, not "
                     f"{type(face).__name__}")


def apply_mask(image: np.ndarray, face: Face | DenseLandmarks | np.ndarray,
               style: MaskStyle | None = None, *, templates: TemplateSet | None = None,
               landmarker: FaceLandmarker | None = None) -> np.ndarray:
    """A copy of ``image`` (BGR uint8) with a mask of ``style`` drawn on ``face``.

    ``face`` is a detected :class:`~maskface.results.Face` (dense landmarks are then found in its
    box), :class:`DenseLandmarks`, or a ``(478, 2)`` array of MediaPipe face-mesh points. A style
    with ``template`` set needs ``templates``. The output depends only on the inputs and
    ``style.seed``.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError("image must be a BGR uint8 array (H, W, 3)")
    style = style or MaskStyle()
    lm = dense_landmarks(image, face, landmarker)
    outline = mask_outline(lm, style.wear)
    anchors = template_anchors(lm, style.wear) if style.template else None
    roi = _roi(outline, image.shape, anchors)
    if roi is None:
        return image.copy()
    x0, y0, x1, y1 = roi
    rng = np.random.default_rng(style.seed)
    if style.template:
        if templates is None:
            raise InputError(f"style uses template '{style.template}' but no templates given")
        tpl = templates.view(style.template, lm.yaw)
        colour, alpha = warp_template(tpl, anchors, roi)
    else:
        colour, alpha = _procedural(outline, style, roi, rng)
    region = image[y0:y1, x0:x1].astype(np.float32) / 255.0
    colour = colour * _lighting(region, alpha, lm.face_width)[..., None]
    # Match the photo's softness: a synthetic edge is sharper than anything the camera saw.
    soft = 0.35 + lm.face_width / 400.0
    colour = cv2.GaussianBlur(colour, (0, 0), soft)
    alpha = cv2.GaussianBlur(alpha, (0, 0), soft * 0.6)
    colour = colour + rng.normal(0, 0.012, colour.shape).astype(np.float32)  # sensor noise
    a = np.clip(alpha, 0, 1)[..., None]
    out_region = region * (1 - a) + np.clip(colour, 0, 1) * a
    out = image.copy()
    out[y0:y1, x0:x1] = np.clip(out_region * 255 + 0.5, 0, 255).astype(np.uint8)
    if not style.template:
        _draw_loops(out, outline, style, region_exposure(region))
    return out


def _roi(outline: MaskOutline, shape: tuple[int, ...], anchors: np.ndarray | None = None
         ) -> tuple[int, int, int, int] | None:
    pts = outline.polygon
    if anchors is not None:
        # A template reaches past its anchors (loops, the lower curve): leave it room.
        centre = anchors.mean(0)
        pts = np.concatenate([pts, centre + (anchors - centre) * 1.5])
    x0 = max(int(np.floor(pts[:, 0].min())) - 3, 0)
    y0 = max(int(np.floor(pts[:, 1].min())) - 3, 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + 4, shape[1])
    y1 = min(int(np.ceil(pts[:, 1].max())) + 4, shape[0])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1, y1


def _procedural(outline: MaskOutline, style: MaskStyle, roi: tuple[int, int, int, int],
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = roi
    width = float(np.linalg.norm(outline.top[-1] - outline.top[0]))
    # Texture at ~2x the drawn size: fine detail survives, and the warp only ever shrinks it.
    texture = render_texture(style, int(np.clip(width * 2, 48, 640)), rng)
    colour = grid_remap(texture, outline.surface(len(outline.top) - 1, 4), roi)
    alpha = np.zeros((y1 - y0, x1 - x0), np.uint8)
    poly = np.round((outline.polygon - [x0, y0]) * 16).astype(np.int32)
    cv2.fillPoly(alpha, [poly], 255, lineType=cv2.LINE_AA, shift=4)
    return colour, alpha.astype(np.float32) / 255.0


def region_exposure(region: np.ndarray) -> float:
    """How bright the scene is lit: the 90th percentile of luminance relative to a well-exposed
    bright surface. A white mask in a dim photo must come out grey."""
    y = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    return float(np.clip(np.percentile(y, 90) / 0.8, 0.4, 1.1))


def _lighting(region: np.ndarray, alpha: np.ndarray, face_width: float) -> np.ndarray:
    """Per-pixel light on the mask, taken from the face underneath it: the low-frequency
    luminance relative to its mean under the mask, times the scene exposure."""
    y = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    low = cv2.GaussianBlur(y, (0, 0), max(face_width * 0.12, 1.0))
    inside = alpha > 0.5
    ref = float(np.median(low[inside])) if inside.any() else float(low.mean())
    relative = np.clip(low / max(ref, 1e-3), 0.6, 1.35) ** 0.8
    return (relative * region_exposure(region)).astype(np.float32)


def _draw_loops(image: np.ndarray, outline: MaskOutline, style: MaskStyle, exposure: float
                ) -> None:
    if not outline.loops:
        return
    fw = float(np.linalg.norm(outline.top[-1] - outline.top[0]))
    thick = max(1, round(fw / 70))
    base = _LOOP_BLACK if style.bgr().mean() < 0.3 else _LOOP_WHITE
    colour = tuple(float(c) for c in np.clip(base * exposure * 0.95, 0, 1) * 255)
    for loop in outline.loops:
        pts = np.round(loop * 16).astype(np.int32)
        cv2.polylines(image, [pts], False, colour, thickness=thick, lineType=cv2.LINE_AA,
                      shift=4)


__all__ = ["NoLandmarksError", "apply_mask", "default_landmarker", "dense_landmarks"]

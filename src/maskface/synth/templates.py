"""Mask templates in MaskTheFace's format: transparent PNGs plus ``masks.cfg`` anchor points.

``masks.cfg`` has one section per template with ``template: <path to png>`` and six anchors
``mask_a`` .. ``mask_f`` (pixels in the PNG): top-left, top-centre (nose bridge), top-right,
bottom-left, bottom-centre (chin), bottom-right. ``<name>_left`` / ``<name>_right`` sections are
the same mask seen on a head turned towards image-left / image-right.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskface.errors import InputError
from maskface.synth.styles import COLOURS

ANCHOR_KEYS = ("mask_a", "mask_b", "mask_c", "mask_d", "mask_e", "mask_f")
#: |yaw| beyond which a turned view (``_left`` / ``_right``) is used when the set has one
VIEW_YAW = 0.25


@dataclass(frozen=True)
class Template:
    name: str
    image: np.ndarray  # (H, W, 4) BGRA uint8
    anchors: np.ndarray  # (6, 2) float32, a..f


class TemplateSet:
    """All templates of a MaskTheFace-style folder, loaded once."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        cfg_path = folder / "masks.cfg"
        if not cfg_path.is_file():
            raise InputError(f"{folder}: no masks.cfg (expected MaskTheFace's template format)")
        cfg = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
        try:
            cfg.read(cfg_path)
        except configparser.Error as exc:
            raise InputError(f"{cfg_path}: cannot parse ({exc.__class__.__name__})") from None
        self.folder = folder
        self.templates: dict[str, Template] = {}
        for name in cfg.sections():
            sec = cfg[name]
            if "template" not in sec or not all(k in sec for k in ANCHOR_KEYS):
                continue  # MaskTheFace's "empty"/"inpaint" pseudo-masks have no image
            png = self._find_png(sec["template"])
            if png is None:
                continue
            image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
            if image is None or image.ndim != 3 or image.shape[2] != 4:
                continue
            anchors = np.array([[float(x) for x in sec[k].split(",")] for k in ANCHOR_KEYS],
                               np.float32)
            self.templates[name] = Template(name, image, anchors)
        if not self.templates:
            raise InputError(f"{cfg_path}: no usable template (PNG with alpha + anchors a-f)")

    def _find_png(self, ref: str) -> Path | None:
        base = Path(ref.strip()).name
        for cand in (self.folder / "templates" / base, self.folder / base):
            if cand.is_file():
                return cand
        return None

    @property
    def frontal_names(self) -> tuple[str, ...]:
        """Template names without a view suffix (the ones a style picks from)."""
        return tuple(sorted(n for n in self.templates
                            if not n.endswith(("_left", "_right"))))

    def labels(self, types: tuple[str, ...] | None = None) -> dict[str, tuple[str, str]]:
        """``{name: (mask type, colour)}`` of the frontal templates whose type (the name's first
        word, e.g. ``KN95`` -> ``kn95``) is in ``types``; the colour is the named colour
        nearest to the template's mean colour."""
        out = {}
        for name in self.frontal_names:
            mtype = name.lower().split("_")[0]
            if types is None or mtype in types:
                out[name] = (mtype, _nearest_colour(self.templates[name].image))
        return out

    def view(self, name: str, yaw: float) -> Template:
        """The template ``name`` in the view matching the head's ``yaw``."""
        if name not in self.templates:
            raise InputError(f"no template '{name}' in {self.folder}; "
                             f"have: {', '.join(sorted(self.templates))}")
        if yaw < -VIEW_YAW and f"{name}_left" in self.templates:
            return self.templates[f"{name}_left"]
        if yaw > VIEW_YAW and f"{name}_right" in self.templates:
            return self.templates[f"{name}_right"]
        return self.templates[name]


def _nearest_colour(bgra: np.ndarray) -> str:
    opaque = bgra[..., 3] > 128
    mean = bgra[..., :3][opaque].mean(0) if opaque.any() else np.zeros(3)
    names = list(COLOURS)
    dist = [float(np.linalg.norm(mean - np.array(COLOURS[n]))) for n in names]
    return names[int(np.argmin(dist))]


def warp_template(template: Template, anchors: np.ndarray, roi: tuple[int, int, int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``template`` so its anchors land on ``anchors`` (image px); returns the colour
    (float32 BGR 0..1) and alpha (float32 0..1) of the region ``roi``.

    Piecewise affine over the triangles a-b-d, b-e-d (left half) and b-c-f, b-f-e (right half),
    each extended beyond its triangle to the plane region nearest it, so the parts of the
    template outside the anchors (ear loops, the curved lower edge) come along. Neighbouring
    triangles agree on their shared edge lines, so the mask has no seams; affine pieces stay
    well-behaved on turned heads where a homography of a squashed half would blow up.
    """
    x0, y0, x1, y1 = roi
    w, h = x1 - x0, y1 - y0
    src = template.anchors.astype(np.float32)
    dst = anchors.astype(np.float32) - np.array([x0, y0], np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)

    def side(p: np.ndarray, q: np.ndarray, x, y):
        """Sign of which side of the line p -> q the point(s) (x, y) are on."""
        return np.sign((q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0]))

    a, b, c, d, e, f = dst
    left = side(b, e, xs, ys) == side(b, e, *a)
    regions = (  # (triangle, pixels it maps), in order of precedence
        ((0, 1, 3), left & (side(b, d, xs, ys) == side(b, d, *a))),
        ((1, 4, 3), left),
        ((1, 2, 5), ~left & (side(b, f, xs, ys) == side(b, f, *c))),
        ((1, 5, 4), ~left),
    )
    mapx = np.empty((h, w), np.float32)
    mapy = np.empty((h, w), np.float32)
    done = np.zeros((h, w), bool)
    for tri, region in regions:
        sel = region & ~done
        m = cv2.getAffineTransform(dst[list(tri)], src[list(tri)])  # image -> template
        mapx[sel] = m[0, 0] * xs[sel] + m[0, 1] * ys[sel] + m[0, 2]
        mapy[sel] = m[1, 0] * xs[sel] + m[1, 1] * ys[sel] + m[1, 2]
        done |= sel
    img = template.image.astype(np.float32) / 255.0
    # Premultiply so bilinear sampling does not bleed the transparent pixels' colour.
    img[..., :3] *= img[..., 3:]
    out = cv2.remap(img, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=0)
    alpha = out[..., 3]
    colour = out[..., :3] / np.maximum(alpha[..., None], 1e-4)
    return colour, alpha

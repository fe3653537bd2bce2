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


def warp_template(template: Template, anchors: np.ndarray, roi: tuple[int, int, int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``template`` so its anchors land on ``anchors`` (image px); returns the colour
    (float32 BGR 0..1) and alpha (float32 0..1) of the region ``roi``.

    Each half of the mask (a-b-e-d and b-c-f-e) gets its own homography, so a turned head's
    near and far halves are shaped independently; the halves meet on the b-e midline.
    """
    x0, y0, x1, y1 = roi
    size = (x1 - x0, y1 - y0)
    off = np.array([x0, y0], np.float32)
    img = template.image.astype(np.float32) / 255.0
    # Premultiply so bilinear sampling does not bleed the transparent pixels' colour.
    img[..., :3] *= img[..., 3:]
    src, dst = template.anchors, anchors.astype(np.float32) - off
    halves = []
    for idx in ((0, 1, 4, 3), (1, 2, 5, 4)):
        h = cv2.getPerspectiveTransform(src[list(idx)], dst[list(idx)])
        halves.append(cv2.warpPerspective(img, h, size, flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_CONSTANT, borderValue=0))
    # Which side of the image midline b->e each pixel is on.
    b, e = dst[1], dst[4]
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
    side = (e[0] - b[0]) * (ys - b[1]) - (e[1] - b[1]) * (xs - b[0])
    left = (side > 0)[..., None]
    out = np.where(left, halves[0], halves[1])
    alpha = out[..., 3]
    colour = out[..., :3] / np.maximum(alpha[..., None], 1e-4)
    return colour, alpha

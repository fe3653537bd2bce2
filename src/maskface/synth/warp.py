"""Piecewise-affine warping of a canonical texture onto a grid of image points."""

from __future__ import annotations

import cv2
import numpy as np


def grid_remap(texture: np.ndarray, grid: np.ndarray, roi: tuple[int, int, int, int]
               ) -> np.ndarray:
    """Warp ``texture`` (h, w, C) onto the image region ``roi`` (x0, y0, x1, y1).

    ``grid`` is ``(nv+1, nu+1, 2)``: where the texture's regular ``nu x nv`` lattice lands in the
    image. Each lattice cell is split into two triangles; for every output pixel we store the
    texture coordinate given by its triangle's inverse affine map and sample the texture once
    with :func:`cv2.remap`. Pixels just outside the grid get extrapolated coordinates (texture
    edge replicated), so an anti-aliased outline drawn separately never shows a gap.
    """
    x0, y0, x1, y1 = roi
    rw, rh = x1 - x0, y1 - y0
    th, tw = texture.shape[:2]
    nv, nu = grid.shape[0] - 1, grid.shape[1] - 1
    mapx = np.full((rh, rw), -1e4, np.float32)
    mapy = np.full((rh, rw), -1e4, np.float32)
    src = np.stack(np.meshgrid(np.linspace(0, tw - 1, nu + 1), np.linspace(0, th - 1, nv + 1)),
                   axis=-1).astype(np.float32)
    dst = (grid - np.array([x0, y0], np.float32)).astype(np.float32)
    for j in range(nv):
        for i in range(nu):
            for tri in (((j, i), (j, i + 1), (j + 1, i)), ((j, i + 1), (j + 1, i + 1), (j + 1, i))):
                d = np.array([dst[a, b] for a, b in tri], np.float32)
                s = np.array([src[a, b] for a, b in tri], np.float32)
                _fill_triangle(mapx, mapy, d, s)
    return cv2.remap(texture, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _fill_triangle(mapx: np.ndarray, mapy: np.ndarray, d: np.ndarray, s: np.ndarray) -> None:
    """Write the inverse affine map of triangle ``d`` (image) -> ``s`` (texture) into the maps,
    over the triangle grown by one pixel."""
    area = (d[1, 0] - d[0, 0]) * (d[2, 1] - d[0, 1]) - (d[2, 0] - d[0, 0]) * (d[1, 1] - d[0, 1])
    if abs(area) < 1e-6:
        return
    h, w = mapx.shape
    bx0 = max(int(np.floor(d[:, 0].min())) - 1, 0)
    by0 = max(int(np.floor(d[:, 1].min())) - 1, 0)
    bx1 = min(int(np.ceil(d[:, 0].max())) + 2, w)
    by1 = min(int(np.ceil(d[:, 1].max())) + 2, h)
    if bx1 <= bx0 or by1 <= by0:
        return
    patch = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
    pts = np.round((d - [bx0, by0]) * 16).astype(np.int32)
    cv2.fillConvexPoly(patch, pts, 1, lineType=cv2.LINE_8, shift=4)
    cv2.polylines(patch, [pts], True, 1, thickness=2, lineType=cv2.LINE_8, shift=4)
    ys, xs = np.nonzero(patch)
    if len(xs) == 0:
        return
    m = cv2.getAffineTransform(d, s)  # image -> texture
    px, py = xs + bx0, ys + by0
    mapx[py, px] = m[0, 0] * px + m[0, 1] * py + m[0, 2]
    mapy[py, px] = m[1, 0] * px + m[1, 1] * py + m[1, 2]

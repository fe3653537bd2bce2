"""Where a mask sits on a face: its outline, ear loops and template anchors, from dense landmarks.

The outline is a top edge ``T(u)`` and a bottom edge ``B(u)``, both running image-left to
image-right over ``u`` in 0..1 with ``u = 0.5`` at the face's midline (nose bridge / chin). The
mask surface is the ruled surface between them, so a texture drawn in a canonical ``(u, v)``
rectangle (pleats along ``v``) follows the face: turned heads (yaw) and tilted heads (roll) come
for free because every point is a landmark or an interpolation between landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskface.synth import landmarks as L
from maskface.synth.landmarks import DenseLandmarks

#: yaw (see :attr:`DenseLandmarks.yaw`) beyond which the far ear loop is hidden
HIDE_LOOP_YAW = 0.3


@dataclass(frozen=True)
class MaskOutline:
    """Mask geometry in image pixels."""

    top: np.ndarray  # (n+1, 2)
    bottom: np.ndarray  # (n+1, 2)
    #: visible ear loops, each a polyline (k, 2)
    loops: tuple[np.ndarray, ...]
    #: MaskTheFace anchors a-f: top-left, top-centre, top-right, bottom-left, -centre, -right
    anchors: np.ndarray  # (6, 2)

    @property
    def polygon(self) -> np.ndarray:
        return np.concatenate([self.top, self.bottom[::-1]])

    def surface(self, nu: int, nv: int) -> np.ndarray:
        """Grid ``(nv+1, nu+1, 2)`` of image points at ``(u, v)``, ``v`` from top to bottom."""
        top, bottom = resample(self.top, nu), resample(self.bottom, nu)
        v = np.linspace(0, 1, nv + 1)[:, None, None]
        return (1 - v) * top[None] + v * bottom[None]


def _lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return a + (b - a) * t


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-6)


def resample(poly: np.ndarray, n: int) -> np.ndarray:
    """``n+1`` points along ``poly`` equally spaced by arc length (the ends kept)."""
    seg = np.linalg.norm(np.diff(poly, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return np.repeat(poly[:1], n + 1, axis=0)
    t = np.linspace(0, s[-1], n + 1)
    return np.stack([np.interp(t, s, poly[:, 0]), np.interp(t, s, poly[:, 1])], axis=1)


def _catmull_rom(points: np.ndarray, per_segment: int = 8) -> np.ndarray:
    """A smooth curve through ``points`` (uniform Catmull-Rom spline, ends extrapolated)."""
    p = np.concatenate([points[:1] * 2 - points[1:2], points, points[-1:] * 2 - points[-2:-1]])
    out = [points[:1]]
    t = np.linspace(0, 1, per_segment + 1)[1:, None]
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3))
    return np.concatenate(out)


def _halves(left: np.ndarray, right: np.ndarray, n: int) -> np.ndarray:
    """Join a left half (side -> midline) and right half (midline -> side), each resampled by
    arc length to ``n/2`` segments so ``u = 0.5`` lands on the midline point."""
    h = n // 2
    return np.concatenate([resample(left, h), resample(right, h)[1:]])


def mask_outline(lm: DenseLandmarks, wear: str = "correct", n: int = 24) -> MaskOutline:
    """The outline of a mask worn as ``wear`` (``correct``, ``nose_exposed``, ``chin_only``)."""
    P = lm.points.astype(np.float64)
    fw = lm.size
    down = _unit(P[L.CHIN] - P[L.NOSE_BRIDGE_TOP])
    centre = P[[L.NOSE_TIP, L.CHIN, L.SIDE_L, L.SIDE_R]].mean(0)
    oval = {i: P[i] for i in L.LOWER_OVAL}

    def push(i: int, amount: float) -> np.ndarray:
        """Silhouette point ``i`` moved outwards by ``amount`` face widths: the mask wraps round
        the jaw and sits a little proud of the skin."""
        return oval[i] + _unit(oval[i] - centre) * amount * fw

    if wear == "correct":
        side_l, side_r = _lerp(P[234], P[93], 0.55), _lerp(P[454], P[323], 0.55)
        cheek_l = _lerp(P[L.EYE_BOTTOM_L], P[L.MOUTH_L], 0.32)
        cheek_r = _lerp(P[L.EYE_BOTTOM_R], P[L.MOUTH_R], 0.32)
        nose = _lerp(P[L.NOSE_BRIDGE_TOP], P[L.NOSE_TIP], 0.45)
        low_l = [93, 132, 58, 172, 136, 150, 149, 176, 148]
        low_r = [377, 400, 378, 379, 365, 397, 288, 361, 323]
        chin = push(L.CHIN, 0.06)
        corner_l, corner_r = push(172, 0.03), push(397, 0.03)
    elif wear == "nose_exposed":
        side_l, side_r = _lerp(P[93], P[132], 0.5), _lerp(P[323], P[361], 0.5)
        # Under the nostrils: the top edge runs below the nose wings, not up the cheeks.
        cheek_l = _lerp(P[L.NOSE_ALAR_L], P[L.MOUTH_L], 0.45)
        cheek_r = _lerp(P[L.NOSE_ALAR_R], P[L.MOUTH_R], 0.45)
        nose = _lerp(P[L.SUBNASALE], P[L.UPPER_LIP_TOP], 0.5)
        # Keep clear of the nose tip even on tiny faces, where the anti-aliased edge and the
        # softening blur would otherwise touch it.
        below = float(np.dot(nose - P[L.NOSE_TIP], down))
        nose = nose + down * max(0.0, 3.0 - below)
        low_l = [132, 58, 172, 136, 150, 149, 176, 148]
        low_r = [377, 400, 378, 379, 365, 397, 288, 361]
        chin = push(L.CHIN, 0.06)
        corner_l, corner_r = push(172, 0.03), push(397, 0.03)
    elif wear == "chin_only":
        side_l, side_r = _lerp(P[58], P[172], 0.6), _lerp(P[288], P[397], 0.6)
        cheek_l = _lerp(P[L.MOUTH_L], P[150], 0.45)
        cheek_r = _lerp(P[L.MOUTH_R], P[379], 0.45)
        nose = _lerp(P[L.LOWER_LIP_BOTTOM], P[L.CHIN], 0.22)
        low_l = [136, 150, 149, 176, 148]
        low_r = [377, 400, 378, 379, 365]
        # Pulled down, the mask hangs below the chin onto the neck.
        chin = P[L.CHIN] + down * 0.22 * fw
        corner_l, corner_r = push(150, 0.05), push(379, 0.05)
    else:
        raise ValueError(f"unknown wear {wear!r}")

    top_l = _catmull_rom(np.stack([side_l, cheek_l, nose]))
    top_r = _catmull_rom(np.stack([nose, cheek_r, side_r]))
    # Outward push grows from the sides (flush with the silhouette) to the chin.
    k = len(low_l)
    bot_l = [side_l] + [push(i, 0.01 + 0.03 * (j + 1) / k) for j, i in enumerate(low_l)]
    bot_r = [push(i, 0.04 - 0.03 * j / k) for j, i in enumerate(low_r)] + [side_r]
    if wear == "chin_only":
        # Hanging below the chin: drop the lower silhouette points towards the neck as well.
        drop = 0.22 * fw * np.sin(np.linspace(0.25, 1, k) * np.pi / 2)[:, None]
        bot_l = [side_l] + list(np.array(bot_l[1:]) + down * drop)
        bot_r = list(np.array(bot_r[:-1]) + down * drop[::-1]) + [side_r]
    top = _halves(top_l, top_r, n)
    bottom = _halves(np.stack(bot_l + [chin]), np.stack([chin] + bot_r), n)
    if wear == "chin_only":
        # On a turned head the far mouth corner reaches the silhouette, where the top edge
        # rises to the jaw: keep the whole edge below the mouth.
        keys = (L.MOUTH_L, L.MOUTH_R, L.LOWER_LIP_BOTTOM)
        top = _keep_below(lm, top, keys, 0.03 * fw)
        bottom = _keep_below(lm, bottom, keys, 0.03 * fw)
    top, bottom = _contain_far_side(lm, top, bottom, wear)

    yaw = lm.yaw
    loops = []
    for side, sign in (("l", -1.0), ("r", 1.0)):
        if sign * yaw > HIDE_LOOP_YAW:  # this side is turned away: its ear is hidden
            continue
        start_top = top[0] if side == "l" else top[-1]
        start_bot = corner_l if side == "l" else corner_r
        ear_idx = (L.SIDE_L, 93) if side == "l" else (L.SIDE_R, 323)
        ear = _lerp(P[ear_idx[0]], P[ear_idx[1]], 0.6)
        ear = ear + _unit(ear - centre) * 0.08 * fw
        loops.append(_bezier(start_top, ear, _unit(ear - centre) * 0.03 * fw))
        loops.append(_bezier(start_bot, ear, _unit(ear - centre) * 0.06 * fw))
    anchors = np.stack([top[0], top[n // 2], top[-1], corner_l, bottom[n // 2], corner_r])
    return MaskOutline(top.astype(np.float32), bottom.astype(np.float32), tuple(loops),
                       anchors.astype(np.float32))


def template_anchors(lm: DenseLandmarks, wear: str) -> np.ndarray:
    """Anchors a-f for a template mask: those of the correctly worn outline, slid down the face
    for an incorrect wear (a pulled-down mask keeps its shape; a template cannot be reshaped
    like the drawn outline without distorting its picture)."""
    anchors = mask_outline(lm, "correct").anchors.astype(np.float64)
    if wear == "correct":
        return anchors.astype(np.float32)
    P = lm.points.astype(np.float64)
    down = _unit(P[L.CHIN] - P[L.NOSE_BRIDGE_TOP])
    if wear == "nose_exposed":
        target = _lerp(P[L.SUBNASALE], P[L.UPPER_LIP_TOP], 0.5)
    else:
        target = _lerp(P[L.LOWER_LIP_BOTTOM], P[L.CHIN], 0.22)
    shift = max(0.0, float(np.dot(target - anchors[1], down)))
    return (anchors + down * shift).astype(np.float32)


def _bezier(a: np.ndarray, b: np.ndarray, bulge: np.ndarray, k: int = 12) -> np.ndarray:
    ctrl = (a + b) / 2 + bulge
    t = np.linspace(0, 1, k)[:, None]
    return ((1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t**2 * b).astype(np.float32)


def _keep_below(lm: DenseLandmarks, curve: np.ndarray, keys: tuple[int, ...], margin: float
                ) -> np.ndarray:
    """Move points of ``curve`` down (along the face's axis) until they are ``margin`` below the
    lowest of the landmarks ``keys``."""
    c, s = np.cos(-lm.roll), np.sin(-lm.roll)
    rot = np.array([[c, -s], [s, c]])
    level = (lm.points[list(keys)].astype(np.float64) @ rot.T)[:, 1].max() + margin
    r = curve @ rot.T
    r[:, 1] = np.maximum(r[:, 1], level)
    return r @ rot


def _contain_far_side(lm: DenseLandmarks, top: np.ndarray, bottom: np.ndarray, wear: str
                      ) -> tuple[np.ndarray, np.ndarray]:
    """On a turned head the nose and mouth stick out past the far cheek's silhouette; widen the
    far half of the mask so it still covers them."""
    P = lm.points.astype(np.float64)
    c, s = np.cos(-lm.roll), np.sin(-lm.roll)
    rot = np.array([[c, -s], [s, c]])
    inv = rot.T
    keys = [L.MOUTH_L, L.MOUTH_R, L.UPPER_LIP_TOP, L.LOWER_LIP_BOTTOM]
    if wear == "correct":
        keys += [L.NOSE_TIP, L.NOSE_ALAR_L, L.NOSE_ALAR_R]
    if wear == "chin_only":
        return top, bottom
    kx = (P[keys] @ rot.T)[:, 0]
    margin = 0.04 * lm.size
    n = len(top) - 1
    u = np.linspace(0, 1, n + 1)
    out = []
    for curve in (top, bottom):
        r = curve @ rot.T
        need_r = kx.max() + margin - r[-1, 0]
        need_l = r[0, 0] - (kx.min() - margin)
        w_r = np.clip((u - 0.5) / 0.5, 0, 1)
        w_l = np.clip((0.5 - u) / 0.5, 0, 1)
        r[:, 0] += max(need_r, 0) * w_r - max(need_l, 0) * w_l
        out.append(r @ inv.T)
    return out[0], out[1]

"""Resizing, test-time augmentation and tiling shared by the single-shot detectors.

A :class:`ScaledDetector` runs its network on the image resized so that the longest side is
``input_size`` (small photos are upscaled: small and masked faces are found far more often), and
optionally

* at several ``scales`` of that size and/or horizontally flipped: the passes are merged by box
  voting, and a face's score is the *mean* over passes (0 for a pass that missed it), so a box
  seen by only one pass needs a high score to survive: more recall for small faces with fewer
  false detections than any single pass at a lower threshold;
* in overlapping native-resolution tiles (``tile``) when the image is larger than
  ``input_size``, so faces too small to survive the downscale are still found; tile detections
  join the whole-image ones by box voting with the *maximum* score (a small face is expected in
  one tile only), and whole-image boxes under ``TILE_HANDOVER_PX`` are left to the tiles.

Upscaling has a cost too: a face that fills a small photo (a 160-px face crop, a close-up)
outgrows the network's largest anchors once the photo is enlarged 4-6x, and masked faces are
lost first. When the resize factor exceeds ``max_upscale``, a second pass at ``max_upscale`` is
merged in with the maximum score, so such faces are found without giving up the upscale that
finds small faces in larger photos.

Measurements of each option are in ``docs/detection.md``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import cv2
import numpy as np

from maskface.detect.base import Detections, FaceDetector
from maskface.errors import InputError
from maskface.geometry import iou_matrix, short_sides

#: with tiling, faces smaller than this (pixels, in the downscaled image) come from the tiles only
TILE_HANDOVER_PX = 24.0
#: landmark order after a horizontal flip: the eyes and the mouth corners swap sides
_FLIP_ORDER = (1, 0, 2, 4, 3)


def resize(image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` resized by ``scale`` (rounded to whole pixels), and the per-axis ``(sx, sy)``
    factors that map the resized image's coordinates back onto ``image``."""
    h, w = image.shape[:2]
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) == (h, w):
        return image, np.ones(2, np.float32)
    # Area averaging only where aliasing would hurt: for a mild reduction bilinear sampling
    # is as good for the detectors and ~5x cheaper (0.37 vs 1.86 ms for 640x480 -> 512x384).
    interp = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    out = cv2.resize(image, (nw, nh), interpolation=interp)
    return out, np.array([w / nw, h / nh], np.float32)


def rescale(det: Detections, factors: np.ndarray) -> Detections:
    """Multiply x and y coordinates of ``det`` by ``factors = (sx, sy)``."""
    f = np.asarray(factors, np.float32)
    return Detections(det.boxes * np.tile(f, 2), det.scores, det.landmarks * f)


def unflip(det: Detections, width: int) -> Detections:
    """Map detections made on the mirrored image back onto the original image."""
    boxes = det.boxes.copy()
    boxes[:, [0, 2]] = width - det.boxes[:, [2, 0]]
    lms = det.landmarks.copy()
    lms[..., 0] = width - lms[..., 0]
    return Detections(boxes, det.scores.copy(), lms[:, _FLIP_ORDER])


def box_vote(parts: Sequence[Detections], iou_threshold: float = 0.5, mode: str = "mean",
             n_passes: int | None = None) -> Detections:
    """Merge detections of several passes: boxes overlapping the best-scoring box of a cluster
    by more than ``iou_threshold`` join it; the fused box and landmarks are the score-weighted
    means of the members.

    ``mode="mean"``: the fused score is the sum of member scores over ``n_passes`` (default:
    ``len(parts)``), i.e. the mean with 0 for passes that missed the face; ``"max"``: the best
    member's score.
    """
    det = Detections.concat(list(parts))
    if len(det) == 0:
        return Detections.empty()
    n_passes = n_passes or len(parts)
    order = np.argsort(-det.scores, kind="stable")
    boxes, scores, lms = det.boxes[order], det.scores[order], det.landmarks[order]
    label = np.full(len(boxes), -1)
    heads: list[int] = []
    for i in range(len(boxes)):
        if heads:
            ious = iou_matrix(boxes[i : i + 1], boxes[heads])[0]
            j = int(np.argmax(ious))
            if ious[j] > iou_threshold:
                label[i] = j
                continue
        label[i] = len(heads)
        heads.append(i)
    out_b, out_s, out_l = [], [], []
    for j in range(len(heads)):
        members = label == j
        w = scores[members].astype(np.float64)
        out_b.append((boxes[members] * w[:, None]).sum(0) / w.sum())
        out_l.append((lms[members] * w[:, None, None]).sum(0) / w.sum())
        out_s.append(w.sum() / n_passes if mode == "mean" else w.max())
    fused = Detections(np.array(out_b, np.float32), np.array(out_s, np.float32),
                       np.array(out_l, np.float32))
    return fused[np.argsort(-fused.scores, kind="stable")]


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap``."""
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    n = int(np.ceil((length - tile) / step)) + 1
    return [round(k * (length - tile) / (n - 1)) for k in range(n)]


class ScaledDetector(FaceDetector):
    """A detector whose network runs on a resized image (see the module docstring).

    Args:
        score_threshold: final score a face must reach.
        input_size: longest side, in pixels, the image is resized to.
        scales: multiples of ``input_size`` to run at (``(1.0,)``: one pass).
        flip: also run every scale on the mirrored image.
        tile: for images larger than ``input_size``, also search native-resolution tiles.
        tile_overlap: fraction of a tile shared with its neighbour.
        pass_threshold: score a box needs in one pass to take part in the vote (defaults to
            ``score_threshold`` with a single pass, else the lower of it and 0.3).
        max_upscale: when the image is enlarged by more than this, also run a pass at this
            factor (``None``: never).
        small_face_zoom: also run a pass at this multiple of the main scale and take from it
            only faces shorter than ``small_face_px`` (image pixels), merged with the maximum
            score: small faces in crowds gain the upscale, while larger faces and the false
            detections an enlarged image brings at large sizes are left to the main pass.
            Skipped for a photo the main pass already enlarges beyond ``max_upscale`` (a
            small photo): its faces are seen enlarged already, and a further zoom found
            mostly hair and textures (docs/detection.md).
        small_face_px: the size limit of ``small_face_zoom``.
        zoom_min_small_faces: run the zoom pass only on photos where the main pass found at
            least this many faces under ``small_face_px`` already (0: on every photo): small
            faces come in crowds, and on photos without them the zoom found few faces and many
            false detections (docs/detection.md).
    """

    def __init__(self, score_threshold: float = 0.6, input_size: int = 640,
                 scales: Sequence[float] = (1.0,), flip: bool = False, tile: bool = False,
                 tile_overlap: float = 0.25, pass_threshold: float | None = None,
                 max_upscale: float | None = 2.0, small_face_zoom: float | None = None,
                 small_face_px: float = 40.0, zoom_min_small_faces: int = 0):
        super().__init__(score_threshold)
        if input_size < 32:
            raise InputError(f"input_size must be at least 32 px, not {input_size}")
        self.input_size = int(input_size)
        self.scales = tuple(float(s) for s in scales) or (1.0,)
        if min(self.scales) <= 0:
            raise InputError(f"scales must be positive, not {scales}")
        self.flip = flip
        self.tile = tile
        self.tile_overlap = tile_overlap
        n_passes = len(self.scales) * (2 if flip else 1)
        if pass_threshold is None:
            pass_threshold = score_threshold if n_passes == 1 else min(score_threshold, 0.3)
        self.pass_threshold = pass_threshold
        if max_upscale is not None and max_upscale <= 0:
            raise InputError(f"max_upscale must be positive, not {max_upscale}")
        self.max_upscale = max_upscale
        if small_face_zoom is not None and small_face_zoom <= 1:
            raise InputError(f"small_face_zoom must be above 1, not {small_face_zoom}")
        self.small_face_zoom = small_face_zoom
        self.small_face_px = float(small_face_px)
        if zoom_min_small_faces < 0:
            raise InputError(f"zoom_min_small_faces must be 0 or more, not {zoom_min_small_faces}")
        self.zoom_min_small_faces = int(zoom_min_small_faces)

    @property
    def n_passes(self) -> int:
        return len(self.scales) * (2 if self.flip else 1)

    @abstractmethod
    def detect_at(self, image: np.ndarray, scale: float) -> Detections:
        """Run the network once on ``image`` resized by ``scale``; boxes with a score of at least
        ``pass_threshold``, in ``image`` pixels."""

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        base = self.input_size / max(h, w)
        passes = []
        for s in self.scales:
            passes.append(self.detect_at(image, base * s))
            if self.flip:
                mirrored = np.ascontiguousarray(image[:, ::-1])
                passes.append(unflip(self.detect_at(mirrored, base * s), w))
        det = passes[0] if len(passes) == 1 else box_vote(passes, n_passes=len(passes))
        enlarged = self.max_upscale is not None and base * min(self.scales) > self.max_upscale
        if enlarged:
            det = box_vote([det, self.detect_at(image, self.max_upscale)], mode="max")
        if (self.small_face_zoom is not None and not enlarged
                and self._small_faces(det) >= self.zoom_min_small_faces):
            zoomed = self.detect_at(image, base * self.small_face_zoom)
            small = zoomed[short_sides(zoomed.boxes) < self.small_face_px]
            det = box_vote([det, small], mode="max")
        if self.tile and max(h, w) > self.input_size:
            # Faces that were tiny in the downscaled pass are the tiles' job: their global boxes
            # are poorly placed and would not merge with the tiles' accurate ones.
            det = det[short_sides(det.boxes) * base * max(self.scales) >= TILE_HANDOVER_PX]
            det = box_vote([det, self.detect_tiled(image)], mode="max")
        return det[det.scores >= self.score_threshold]

    def _small_faces(self, det: Detections) -> int:
        kept = det.scores >= self.score_threshold
        return int((short_sides(det.boxes)[kept] < self.small_face_px).sum())

    def detect_tiled(self, image: np.ndarray, scale: float = 1.0) -> Detections:
        """Detect in overlapping tiles of ``input_size`` pixels of ``image`` resized by
        ``scale``; duplicates across tile borders are merged.

        A box touching a tile edge inside the image is a face cut by the tile: it is dropped, as
        the overlap shows the whole face to the neighbouring tile (or to the global pass).
        """
        h, w = image.shape[:2]
        tile = max(1, round(self.input_size / scale))
        margin = 0.02 * tile  # boxes of cut faces end at, or just inside, the edge
        parts = []
        for y in tile_origins(h, tile, self.tile_overlap):
            for x in tile_origins(w, tile, self.tile_overlap):
                crop = np.ascontiguousarray(image[y : y + tile, x : x + tile])
                det = self.detect_at(crop, scale)
                th, tw = crop.shape[:2]
                b = det.boxes  # in crop pixels, as detect_at maps back from its resize
                cut = (((b[:, 0] < margin) & (x > 0)) | ((b[:, 1] < margin) & (y > 0))
                       | ((b[:, 2] > tw - margin) & (x + tw < w))
                       | ((b[:, 3] > th - margin) & (y + th < h)))
                parts.append(det[~cut].scaled(1.0, (x, y)))
        return box_vote(parts, mode="max")

"""Drawing, kept apart from inference: boxes and labels on a copy of the image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from maskface.results import Face

# BGR colours
GREEN = (60, 180, 60)
RED = (40, 40, 220)
ORANGE = (0, 150, 255)
GREY = (160, 160, 160)

_TEXT = {"with_mask": "Mask", "without_mask": "No mask", "mask_incorrect": "Mask incorrect"}
_COLOUR = {"with_mask": GREEN, "without_mask": RED, "mask_incorrect": ORANGE}


def label_for(face: Face) -> tuple[str, tuple[int, int, int]]:
    """Text and colour for a face: 'Mask 98%' in green, 'No mask 97%' in red, name if known."""
    parts, colour = [], GREY
    if face.mask is not None:
        parts.append(f"{_TEXT.get(face.mask.label, face.mask.label)} {face.mask.probability:.0%}")
        colour = _COLOUR.get(face.mask.label, GREY)
    else:
        parts.append(f"Face {face.score:.0%}")
    if face.identity is not None:
        parts.insert(0, face.identity.name if face.identity.known else "Unknown")
    if face.liveness is not None:
        parts.append(f"{'Live' if face.liveness.live else 'SPOOF'} {face.liveness.score:.0%}")
        if not face.liveness.live:
            colour = RED
    return " | ".join(parts), colour


def _put_label(img: np.ndarray, text: str, box: np.ndarray, colour) -> None:
    h, w = img.shape[:2]
    # Readable on small faces and in large photos alike: scale with the image, not the box.
    scale = max(0.4, min(1.2, max(h, w) / 1400))
    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, thick * 2)
    x1, y1 = int(box[0]), int(box[1])
    x = min(max(0, x1), max(0, w - tw - 2 * pad))
    y_top = y1 - th - base - 2 * pad
    if y_top < 0:  # no room above the box: put the label inside it, at the top
        y_top = max(0, min(int(box[1]), h - th - base - 2 * pad))
    y_bot = min(h, y_top + th + base + 2 * pad)
    cv2.rectangle(img, (x, y_top), (min(w, x + tw + 2 * pad), y_bot), colour, -1)
    cv2.putText(img, text, (x + pad, y_bot - base - pad // 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thick, cv2.LINE_AA)


def annotate(image: np.ndarray, faces: Sequence[Face], landmarks: bool = True) -> np.ndarray:
    """Return a copy of ``image`` with each face's box, landmarks and label drawn."""
    out = image.copy()
    h, w = out.shape[:2]
    line = max(1, round(max(h, w) / 500))
    for face in faces:
        text, colour = label_for(face)
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        x1, y1 = max(0, x1), max(0, y1)
        x2, y2 = min(w - 1, x2), min(h - 1, y2)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, line, cv2.LINE_AA)
        if landmarks:
            for px, py in face.landmarks:
                cv2.circle(out, (int(px), int(py)), line + 1, (255, 255, 0), -1, cv2.LINE_AA)
        _put_label(out, text, np.array([x1, y1, x2, y2]), colour)
    return out

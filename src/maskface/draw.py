"""Drawing, kept apart from inference: boxes and labels on a copy of the image."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from maskface.errors import InputError
from maskface.results import Face

# BGR colours
GREEN = (60, 180, 60)
RED = (40, 40, 220)
ORANGE = (0, 150, 255)
GREY = (160, 160, 160)

_TEXT = {"with_mask": "Mask", "without_mask": "No mask", "mask_incorrect": "Mask incorrect"}
#: the labels in a few letters, for captions under thumbnails
SHORT_LABELS = {"with_mask": "mask", "without_mask": "no mask", "mask_incorrect": "incorrect"}
_COLOUR = {"with_mask": GREEN, "without_mask": RED, "mask_incorrect": ORANGE}


# Latin letters NFKD does not decompose into a base letter and an accent
_FOLD = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "ß": "ss",
                       "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "Þ": "Th", "þ": "th",
                       "ı": "i"})


def drawable(text: str) -> str:
    """``text`` in the ASCII that OpenCV's Hershey fonts can draw: accents dropped ("José
    Łukasiewicz" → "Jose Lukasiewicz"), any other character one "?" (putText drew one "?" per
    UTF-8 byte: "Jos?? ??ukasiewicz")."""
    folded = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c if c.isascii() else "?" for c in folded
                   if not unicodedata.combining(c))


def _name(face: Face) -> str:
    """The name as drawn; a name in a script the font lacks is shown by its person id."""
    name = drawable(face.identity.name or "")
    if not any(c.isalnum() for c in name):
        return f"#{face.identity.person_id}"
    return name


def label_for(face: Face) -> tuple[str, tuple[int, int, int]]:
    """Text and colour for a face: 'Mask 98%' in green, 'No mask 97%' in red, name if known."""
    parts, colour = [], GREY
    if face.mask is not None:
        parts.append(f"{_TEXT.get(face.mask.label, face.mask.label)} {face.mask.probability:.0%}")
        colour = _COLOUR.get(face.mask.label, GREY)
    else:
        parts.append(f"Face {face.score:.0%}")
    if face.identity is not None:
        parts.insert(0, _name(face) if face.identity.known else "Unknown")
    if face.liveness is not None:
        if face.liveness.problem:  # e.g. a grey frame: no verdict either way
            parts.append("Liveness ?")
        else:
            parts.append(f"{'Live' if face.liveness.live else 'SPOOF'} "
                         f"{face.liveness.score:.0%}")
            if not face.liveness.live:
                colour = RED
    return " | ".join(parts), colour


def _text_style(shape: tuple[int, ...]) -> tuple[float, int, int]:
    """Font scale, thickness and padding: readable on small faces and in large photos alike
    (they scale with the image, not the box)."""
    scale = max(0.4, min(1.2, max(shape[:2]) / 1400))
    thick = max(1, round(scale * 2))
    return scale, thick, max(2, thick * 2)


def label_rects(shape: tuple[int, ...], texts: Sequence[str], boxes: Sequence[np.ndarray]
                ) -> list[tuple[int, int, int, int] | None]:
    """Where each label goes, ``(x1, y1, x2, y2)`` inside the image, or ``None``: above its
    box, else below it, else inside its top, whichever first covers neither a label already
    placed nor another face (a face twice the label's height may cover a neighbour's box
    rather than lose its label). Larger faces are placed first; a label with no free place is
    left out (its box's colour still shows the mask state), so a crowd stays readable."""
    h, w = shape[:2]
    scale, thick, pad = _text_style(shape)
    rects: list[tuple[int, int, int, int] | None] = [None] * len(boxes)
    placed: list[tuple[int, int, int, int]] = []
    faces = [tuple(int(v) for v in b[:4]) for b in boxes]
    for i in sorted(range(len(boxes)), key=lambda k: -(faces[k][2] - faces[k][0])
                    * (faces[k][3] - faces[k][1])):
        box = faces[i]
        (tw, th), base = cv2.getTextSize(texts[i], cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        lw, lh = tw + 2 * pad, th + base + 2 * pad
        x = min(max(0, box[0]), max(0, w - lw))
        tops = [box[1] - lh, box[3] + 1, box[1]]  # above, below, inside
        cands = [(x, y, min(w, x + lw), y + lh) for y in tops if 0 <= y <= h - lh]
        if not cands:  # an image smaller than the label
            cands = [(x, 0, min(w, x + lw), min(h, lh))]
        others = placed + [f for k, f in enumerate(faces) if k != i]
        rects[i] = next((c for c in cands if not any(_overlap(c, o) for o in others)), None)
        if rects[i] is None and box[3] - box[1] >= 2 * lh:
            # a face twice the label's height keeps its label over a neighbour's box edge
            rects[i] = next((c for c in cands if not any(_overlap(c, o) for o in placed)), None)
        if rects[i] is not None:
            placed.append(rects[i])
    return rects


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _put_label(img: np.ndarray, text: str, rect: tuple[int, int, int, int], colour) -> None:
    scale, thick, pad = _text_style(img.shape)
    base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[1]
    x1, y1, x2, y2 = rect
    cv2.rectangle(img, (x1, y1), (x2, y2), colour, -1)
    cv2.putText(img, text, (x1 + pad, y2 - base - pad // 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thick, cv2.LINE_AA)


def annotate(image: np.ndarray, faces: Sequence[Face], landmarks: bool = True) -> np.ndarray:
    """Return a copy of ``image`` with each face's box, landmarks (on faces large enough to
    show them) and label drawn."""
    out = image.copy()
    h, w = out.shape[:2]
    line = max(1, round(max(h, w) / 500))
    labels, boxes = [label_for(f) for f in faces], []
    for face, (_, colour) in zip(faces, labels):
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        x1, y1 = max(0, x1), max(0, y1)
        x2, y2 = min(w - 1, x2), min(h - 1, y2)
        boxes.append(np.array([x1, y1, x2, y2]))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, line, cv2.LINE_AA)
        # five dots would hide a small face (a crowd's background faces): boxes only there
        if landmarks and min(x2 - x1, y2 - y1) >= 16 * (line + 1):
            for px, py in face.landmarks:
                cv2.circle(out, (int(px), int(py)), line + 1, (255, 255, 0), -1, cv2.LINE_AA)
    # labels last, so no box or landmark is drawn over one
    rects = label_rects(out.shape, [t for t, _ in labels], boxes)
    for (text, colour), rect in zip(labels, rects):
        if rect is not None:
            _put_label(out, text, rect, colour)
    return out


def thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` fitted into a white ``size`` x ``size`` square (aspect ratio kept)."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, (nw, nh), interpolation=interp)
    out = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - nh) // 2, (size - nw) // 2
    out[y : y + nh, x : x + nw] = small
    return out


def _caption(text: str, width: int, height: int) -> np.ndarray:
    """A white strip with ``text`` cut (with "..") to fit ``width``."""
    strip = np.full((height, width, 3), 255, np.uint8)
    scale = 0.38
    text = drawable(text)
    while len(text) > 4 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale,
                                            1)[0][0] > width - 4:
        text = text[:-3] + ".."
    cv2.putText(strip, text, (2, height - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1,
                cv2.LINE_AA)
    return strip


def image_grid(cells: Sequence[tuple[np.ndarray, Sequence[str]]], columns: int = 4,
               pad: int = 6) -> np.ndarray:
    """A white sheet of ``(image, caption lines)`` cells, row by row, each image over its
    lines (images of one size read best: see :func:`thumbnail`)."""
    if not cells:
        return np.full((64, 64, 3), 255, np.uint8)
    line_h = 18
    drawn = [np.vstack([img, *(_caption(t, img.shape[1], line_h) for t in lines)])
             for img, lines in cells]
    cw = max(c.shape[1] for c in drawn)
    ch = max(c.shape[0] for c in drawn)
    columns = max(1, min(columns, len(drawn)))
    rows = (len(drawn) + columns - 1) // columns
    sheet = np.full((rows * (ch + pad) + pad, columns * (cw + pad) + pad, 3), 255, np.uint8)
    for k, cell in enumerate(drawn):
        r, c = divmod(k, columns)
        y, x = pad + r * (ch + pad), pad + c * (cw + pad)
        sheet[y : y + cell.shape[0], x : x + cell.shape[1]] = cell
    return sheet


def check_image_path(path: str | Path) -> Path:
    """``path`` as a Path if :func:`write_image` can take it, else :class:`InputError` in one
    line (a folder, no or unknown suffix, a file in the way): for a command to check before
    its work."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give an image file name (e.g. out.jpg)")
    if not path.suffix or not cv2.haveImageWriter(str(path)):
        raise InputError(f"{path}: give an image file name ending in .jpg, .png, .webp, …"
                         f" ({path.suffix or 'no suffix'} is not an image format)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{parent}: is a file, so it cannot be the folder of {path}")
            break
    return path


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """The one image writer: ``image`` to ``path`` in the format its suffix names (PNG
    compressed hard), creating the folder. :class:`InputError` in one line when the path
    cannot be an image file (:func:`check_image_path`) or cannot be written there."""
    path = check_image_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path.parent}: cannot be a folder ({exc.strerror})") from None
    params = [cv2.IMWRITE_PNG_COMPRESSION, 9] if path.suffix.lower() == ".png" else []
    try:
        written = cv2.imwrite(str(path), image, params)
    except cv2.error:
        written = False
    if not written:
        raise InputError(f"{path}: cannot be written (permissions, disk space?)")
    return path

"""Everyday bad and awkward image files, written at test time from the built-in photo."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (pixel data is a stub): enough to test
    that size limits are enforced before decoding."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr_start = 8 + 8  # signature, then length+type of IHDR
    struct.pack_into(">II", data, ihdr_start, width, height)
    crc = zlib.crc32(bytes(data[12 : ihdr_start + 13])) & 0xFFFFFFFF
    struct.pack_into(">I", data, ihdr_start + 13, crc)
    return bytes(data)


def write_awkward_images(src: Path, folder: Path) -> dict[str, Path]:
    """Write the same face photo in awkward-but-valid encodings; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.open(src).convert("RGB")
    out: dict[str, Path] = {}

    def save(name: str, im: Image.Image, **kw) -> None:
        path = folder / name
        im.save(path, **kw)
        out[name] = path

    save("grey.png", rgb.convert("L"))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(200)
    save("rgba.png", rgba)
    save("cmyk.jpg", rgb.convert("CMYK"), quality=92)
    save("palette.png", rgb.convert("P"))
    arr16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    save("deep16.png", Image.fromarray(arr16))
    # EXIF orientation 6: the stored pixels are rotated, viewers turn them upright.
    rotated = rgb.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    save("exif_rotated.jpg", rotated, quality=92, exif=exif.tobytes())
    return out


def write_bad_files(src: Path, folder: Path) -> dict[str, Path]:
    """Write unusable files; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    good = src.read_bytes()
    files = {
        "empty.jpg": b"",
        "text.jpg": b"this is not an image\n" * 20,
        "truncated.jpg": good[: len(good) // 3],
        "corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        "huge.png": _png_with_size(20000, 20000),
    }
    out = {}
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        out[name] = path
    return out

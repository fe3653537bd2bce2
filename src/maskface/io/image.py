"""The one image loader: any path, bytes or array in, an upright 8-bit BGR array out.

Real inputs are messy: EXIF-rotated phone photos, grey scans, RGBA screenshots, 16-bit PNGs,
CMYK JPEGs, iPhone HEIC photos, truncated uploads and decompression bombs. Everything is
normalised here so the rest of the pipeline only ever sees ``uint8`` arrays of shape
``(H, W, 3)`` in BGR order (OpenCV's).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maskface.errors import ImageLoadError, ImageTooLargeError
from maskface.locations import is_url

ImageInput = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray | Image.Image

#: largest image accepted, in pixels (override with MASKFACE_MAX_PIXELS)
DEFAULT_MAX_PIXELS = 64_000_000
#: Pillow refuses images over this many pixels before any limit of ours is checked (its
#: decompression-bomb guard; its default, left as it is: the process is not ours alone)
MAX_DECODABLE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

#: largest encoded file accepted, in bytes (override with MASKFACE_MAX_BYTES)
DEFAULT_MAX_BYTES = 100 * 1024 * 1024

_EXIF_ORIENTATION = 0x0112

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".jfif",
     ".avif", ".heic", ".heif"}
)

#: ISO base media "ftyp" brands of HEIF still images (iPhones save HEIC)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1",
                          b"msf1"})
_heif_registered: list[bool] = []  # [True] once pillow-heif's opener is registered


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _heif_support() -> bool:
    """Register pillow-heif's opener (the optional ``heif`` extra) once; False without it.
    Optional because its wheels bundle libheif/libde265 (LGPL) and x265 (GPL)."""
    if not _heif_registered:
        try:
            import pillow_heif
        except ImportError:
            return False
        pillow_heif.register_heif_opener()
        _heif_registered.append(True)
    return True


def pixel_limit() -> int:
    return int(os.environ.get("MASKFACE_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def byte_limit() -> int:
    return int(os.environ.get("MASKFACE_MAX_BYTES", DEFAULT_MAX_BYTES))


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert any PIL mode to an RGB uint8 array, keeping the tonal range of deep images."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = arr.max()
        if mode.startswith("I;16"):
            scale = 255.0 / 65535.0
        else:
            scale = 255.0 / hi if hi > 255 else 1.0
        grey = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        # Transparent areas become white, as most viewers show them; faces keep their colours.
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return np.asarray(canvas.convert("RGB"))
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


def _rgb_to_bgr(rgb: np.ndarray) -> np.ndarray:
    """A contiguous BGR copy; OpenCV's SIMD swap is ~25x faster than numpy's strided copy
    (0.05 against 1.2 ms for 640x480, docs/performance.md)."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)


def _check_array(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.size == 0 or arr.ndim not in (2, 3):
        raise ImageLoadError(name, f"array of shape {arr.shape} is not an image")
    if arr.ndim == 3 and arr.shape[2] not in (1, 3, 4):
        raise ImageLoadError(name, f"array with {arr.shape[2]} channels is not an image")
    if arr.shape[0] * arr.shape[1] > pixel_limit():
        raise ImageTooLargeError(name, f"image of {arr.shape[1]}x{arr.shape[0]} px is too large")
    if arr.dtype != np.uint8:
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
                or arr.dtype == np.bool_):
            raise ImageLoadError(name, f"array of {arr.dtype} values is not an image")
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise ImageLoadError(name, "array has NaN or infinite values")
        if arr.dtype == np.bool_:
            arr = arr.astype(np.float32)  # a mask image: black and white
        arr = np.clip(arr * _value_scale(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = _over_white(arr)
    return np.ascontiguousarray(arr)


#: float arrays whose values reach at most this are taken as 0..1 images: resizing, blurring
#: or normalising a 0..1 image overshoots 1 a little (cubic resizing: ~1.1), and a 0..255
#: image this dark would be black anyway
FLOAT_UNIT_MAX = 2.0


def _value_scale(arr: np.ndarray) -> float:
    """The factor that brings ``arr``'s values to 0..255, read from its range, not only its
    dtype: 8-bit values in a uint16 or int array are common (``img.astype(np.uint16)``), and so
    are 16-bit ones in an int32 array."""
    hi = float(arr.max(initial=0))
    if np.issubdtype(arr.dtype, np.floating):
        return 255.0 if hi <= FLOAT_UNIT_MAX else 1.0
    if hi <= 255:
        return 1.0
    return 1.0 / 257.0 if hi <= 65535 else 255.0 / hi


def _over_white(bgra: np.ndarray) -> np.ndarray:
    """A BGRA array's colours over white, as :func:`_to_rgb_array` does for a PNG's alpha,
    so one image gives one answer whether it comes as a file or as an array."""
    alpha = bgra[..., 3:4]
    # all opaque, or all transparent: screen grabbers often leave alpha at 0, meaning nothing
    if alpha.min() == 255 or alpha.max() == 0:
        return bgra[..., :3]
    a = alpha.astype(np.float32) / 255.0
    return np.rint(bgra[..., :3] * a + 255.0 * (1.0 - a)).astype(np.uint8)


def _decode_plain_jpeg(im: Image.Image, data: bytes) -> np.ndarray | None:
    """OpenCV's decoder for the common case, an upright complete RGB/grey JPEG: same pixels as
    PIL's (both libjpeg-turbo) in half the time, with no RGB->BGR swap. ``None`` otherwise.

    Truncated files (no end-of-image marker) and EXIF-rotated ones stay on PIL's path, which
    rejects the first and rotates the second.
    """
    if im.format != "JPEG" or im.mode not in ("RGB", "L") or not data.endswith(b"\xff\xd9"):
        return None
    if im.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        return None
    import cv2

    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)


def looks_like_video(data: bytes) -> bool:
    """Whether bytes start like a video container: MP4/MOV/3GP, Matroska/WebM, AVI, MPEG
    program or transport stream, FLV, ASF/WMV, Ogg. ``data``: at least the first 189 bytes
    of the file (a transport stream is known by its second packet)."""
    head = data[:16]
    return ((head[4:8] == b"ftyp" and head[8:12] not in (b"heic", b"heix", b"mif1", b"avif"))
            or head.startswith((b"\x1a\x45\xdf\xa3", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3",
                                b"FLV\x01", b"OggS", b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"))
            or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
            or (len(data) > 188 and data[0] == data[188] == 0x47))


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = None
                 ) -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, …) to an upright BGR uint8 array.

    ``max_pixels`` (default: ``MASKFACE_MAX_PIXELS`` or 64 MP) is checked from the header,
    before any pixel is decoded: a small file can declare a huge canvas.
    """
    limit = max_pixels or pixel_limit()
    if not data:
        raise ImageLoadError(name, "file is empty")
    if len(data) > byte_limit():
        raise ImageTooLargeError(
            name, f"file of {len(data) / 1e6:.0f} MB is larger than allowed"
        )
    if _is_heif(data) and not _heif_support():
        raise ImageLoadError(name, "HEIC/HEIF photo (iPhone): install the 'heif' extra "
                                   "(pip install 'maskface[heif]') or export it as JPEG")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > limit:
                raise ImageTooLargeError(
                    name, f"image of {w}x{h} px is too large (limit {limit:,} px)"
                )
            if w == 0 or h == 0:
                raise ImageLoadError(name, "image has no pixels")
            fast = _decode_plain_jpeg(im, data)
            if fast is not None:
                return fast
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # our own decoded image: no copy
            rgb = _to_rgb_array(im)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        if looks_like_video(data):
            raise ImageLoadError(name, "a video file, not an image") from None
        raise ImageLoadError(name, "not a recognised image format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # raised while reading the header, before our own size check: the same refusal
        raise ImageTooLargeError(name, f"image is too large (over {MAX_DECODABLE_PIXELS:,} "
                                       "px, the decoder's bound)") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt streams
        raise ImageLoadError(name, f"corrupt or truncated image ({exc})") from None
    return _rgb_to_bgr(rgb)


def _from_pil(im: Image.Image, name: str = "<PIL image>") -> np.ndarray:
    """A PIL image held by the caller, under the checks a file gets: no pixels, over the pixel
    limit, and a lazily opened file that turns out corrupt are :class:`ImageLoadError`."""
    w, h = im.size
    if w == 0 or h == 0:
        raise ImageLoadError(name, "image has no pixels")
    if w * h > pixel_limit():
        raise ImageTooLargeError(name, f"image of {w}x{h} px is too large "
                                       f"(limit {pixel_limit():,} px)")
    try:
        im.load()
        return _rgb_to_bgr(_to_rgb_array(ImageOps.exif_transpose(im)))
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(name, f"corrupt or truncated image ({exc})") from None


def load_image(source: ImageInput) -> np.ndarray:
    """Load an image from a path, encoded bytes, a PIL image or an array.

    Arrays are taken as BGR (OpenCV's convention) when they have 3 channels, BGRA with 4 (drawn
    over white, as a PNG's transparency is); float arrays as 0..1 when no value exceeds
    :data:`FLOAT_UNIT_MAX`, else 0..255; integer arrays as 8-bit when no value exceeds 255,
    else 16-bit (wider: scaled by their maximum). Returns an upright ``uint8`` BGR array of
    shape ``(H, W, 3)``; raises :class:`ImageLoadError` with a one-line reason naming the
    source otherwise.
    """
    if isinstance(source, np.ndarray):
        return _check_array(source, "<array>")
    if isinstance(source, Image.Image):
        return _from_pil(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source))
    if not isinstance(source, (str, os.PathLike)):
        raise ImageLoadError(f"<{type(source).__name__}>",
                             "not an image: give a path, encoded bytes, a PIL image or a "
                             "numpy array")
    path = Path(os.fspath(source))
    name = str(path)
    try:
        exists = path.exists()
    except OSError as exc:  # a name too long for the file system, say
        raise ImageLoadError(name[:200], f"not a usable path ({exc.strerror})") from None
    if not exists:
        if is_url(source):
            raise ImageLoadError(os.fspath(source), "URLs are not fetched: download the image "
                                 "and give its path")
        raise ImageLoadError(name, "no such file")
    if path.is_dir():
        raise ImageLoadError(name, "is a folder, not an image")
    try:
        size = path.stat().st_size
        if size > byte_limit():
            raise ImageTooLargeError(name, f"file of {size / 1e6:.0f} MB is larger than allowed")
        data = path.read_bytes()
    except PermissionError:
        raise ImageLoadError(name, "permission denied") from None
    return decode_image(data, name)


def grey_copy(image: np.ndarray) -> np.ndarray:
    """The BGR image (or ``(N, H, W, 3)`` batch) as a grey camera would deliver it: the same
    grey level in all three channels (for measuring what infrared frames do to a model).
    OpenCV's BGR-to-grey weights, applied to batches too."""
    lum = np.asarray(image, np.float32) @ np.array([0.114, 0.587, 0.299], np.float32)
    grey = np.clip(np.rint(lum), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES

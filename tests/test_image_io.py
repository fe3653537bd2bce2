"""The one image loader on everyday awkward and bad inputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from badimages import write_awkward_images, write_bad_files
from maskface.errors import ImageLoadError
from maskface.io import decode_image, load_image


def test_loads_upright_bgr(astronaut_path):
    img = load_image(astronaut_path)
    assert img.dtype == np.uint8 and img.shape == (512, 512, 3)
    # The astronaut's suit is white and the flag behind her is red/blue: BGR order means the
    # red stripes have more signal in channel 2 than channel 0.
    assert img[..., 2].mean() > img[..., 0].mean()


@pytest.mark.parametrize(
    "name", ["grey.png", "rgba.png", "cmyk.jpg", "palette.png", "deep16.png", "exif_rotated.jpg"]
)
def test_awkward_encodings_decode_to_bgr(astronaut_path, tmp_path, name):
    path = write_awkward_images(astronaut_path, tmp_path)[name]
    img = load_image(path)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape[:2] == (512, 512)
    assert img.std() > 10  # real content, not a blank canvas


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_plain_jpeg_fast_path_gives_pil_pixels(astronaut_path, mode):
    """Upright JPEGs are decoded by OpenCV (faster); the pixels must be PIL's, in BGR."""
    import io

    import cv2
    from PIL import Image

    buf = io.BytesIO()
    Image.open(astronaut_path).convert(mode).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    want = cv2.cvtColor(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")),
                        cv2.COLOR_RGB2BGR)
    np.testing.assert_array_equal(decode_image(data), want)


def test_truncated_jpeg_is_refused_not_half_decoded(astronaut_path):
    data = Path(astronaut_path).read_bytes()
    with pytest.raises(ImageLoadError, match="corrupt or truncated"):
        decode_image(data[: len(data) * 2 // 3], "cut.jpg")


def test_exif_rotation_is_applied(astronaut_path, tmp_path):
    upright = load_image(astronaut_path).astype(np.float32)
    img = load_image(write_awkward_images(astronaut_path, tmp_path)["exif_rotated.jpg"])
    diff = np.abs(img.astype(np.float32) - upright).mean()
    assert diff < 8, f"EXIF-rotated image not turned upright (mean diff {diff:.1f})"


def test_deep16_keeps_tonal_range(astronaut_path, tmp_path):
    img = load_image(write_awkward_images(astronaut_path, tmp_path)["deep16.png"])
    assert img.max() > 200 and img.min() < 50


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("empty.jpg", "empty"),
        ("text.jpg", "not a recognised image"),
        ("truncated.jpg", "truncated"),
        ("corrupt.png", ""),
        ("huge.png", "too large"),
    ],
)
def test_bad_files_raise_one_line_error_naming_file(astronaut_path, tmp_path, name, fragment):
    path = write_bad_files(astronaut_path, tmp_path)[name]
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    msg = str(info.value)
    assert "\n" not in msg and name in msg and fragment in msg


def test_a_video_is_named_as_a_video(tmp_path):
    """`maskface enroll NAME clip.mp4` said "not a recognised image format"."""
    clip = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 48))
    for _ in range(3):
        w.write(np.zeros((48, 64, 3), np.uint8))
    w.release()
    with pytest.raises(ImageLoadError, match="clip.mp4: a video file, not an image"):
        load_image(clip)
    with pytest.raises(ImageLoadError, match="not a recognised image format"):
        decode_image(b"\x00\x00\x00\x18ftypheic" + bytes(64))  # an unreadable HEIC is no video


def test_missing_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_a_url_is_named_as_a_url_not_a_missing_file(tmp_path, monkeypatch):
    """A pasted web address said "http:/host/a.jpg: no such file" (Path folds its //)."""
    for url in ("https://example.com/door.jpg", "s3://bucket/door.jpg"):
        with pytest.raises(ImageLoadError, match="URLs are not fetched") as info:
            load_image(url)
        assert url in str(info.value)
    # a local file whose name looks like a URL once folded is still read, and a drive letter
    # is not a scheme
    monkeypatch.chdir(tmp_path)
    (tmp_path / "http:").mkdir()
    cv2.imwrite(str(tmp_path / "http:" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    assert load_image("http:/a.png").shape == (8, 8, 3)
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image("C:/photos/door.jpg")


def test_arrays_and_bytes(astronaut_path):
    img = load_image(astronaut_path)
    assert np.array_equal(decode_image(astronaut_path.read_bytes()), img)
    grey = load_image(img[..., 0])
    assert grey.shape == img.shape
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    assert np.array_equal(load_image(rgba), img)
    with pytest.raises(ImageLoadError):
        load_image(np.zeros((0, 5, 3), np.uint8))
    assert np.array_equal(load_image(memoryview(astronaut_path.read_bytes())), img)
    # a float image in 0..1 is scaled, not read as black
    assert np.abs(load_image(img / 255.0).astype(int) - img).max() <= 1


@pytest.mark.parametrize("source, fragment", [
    (None, "give a path"), (5, "give a path"), ([[1, 2]], "give a path"),
    (np.full((9, 9, 3), np.nan), "NaN"), (np.zeros((9, 9, 3), complex), "complex128"),
    (np.zeros((9, 9, 3), object), "object"),
])
def test_what_is_not_an_image_is_a_one_line_load_error(source, fragment):
    with pytest.raises(ImageLoadError, match=fragment) as err:
        load_image(source)
    assert "\n" not in str(err.value)


def test_phone_formats_heic_and_avif(astronaut_path, tmp_path):
    """iPhone HEIC (with the 'heif' extra; EXIF rotation applied) and AVIF photos decode to
    the same upright picture as the JPEG."""
    from PIL import Image, features

    ref = load_image(astronaut_path).astype(np.float32)
    im = Image.open(astronaut_path)
    if features.check("avif"):
        im.save(tmp_path / "a.avif")
        assert np.abs(load_image(tmp_path / "a.avif") - ref).mean() < 4
    pillow_heif = pytest.importorskip("pillow_heif", reason="the 'heif' extra is not installed")
    pillow_heif.from_pillow(im).save(tmp_path / "a.heic", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned left; shown upright
    pillow_heif.from_pillow(im.rotate(90, expand=True)).save(
        tmp_path / "turned.heic", quality=90, exif=exif.tobytes())
    for name in ("a.heic", "turned.heic"):
        img = load_image(tmp_path / name)
        assert img.shape == ref.shape and np.abs(img - ref).mean() < 4, name


def test_heic_without_the_extra_says_what_to_do(astronaut_path, tmp_path, monkeypatch):
    import maskface.io.image as image_io

    # the first bytes of an iPhone photo: a HEIF "ftyp" box with the "heic" brand
    heic = tmp_path / "IMG_0001.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    monkeypatch.setattr(image_io, "_heif_support", lambda: False)
    with pytest.raises(ImageLoadError) as err:
        load_image(heic)
    assert str(err.value) == (f"{heic}: HEIC/HEIF photo (iPhone): install the 'heif' extra "
                              "(pip install 'maskface[heif]') or export it as JPEG")


def test_array_value_ranges_read_from_the_values(astronaut_path):
    """One photo, in the forms arrays come in, loads as the same picture: a 0..1 float image
    that overshoots 1 a little (cubic resizing does), 8-bit values in a uint16 array, 16-bit
    values in an int32 array."""
    img = load_image(astronaut_path)
    unit = img.astype(np.float32) / 255.0
    unit[0, 0, 0] = 1.08  # an overshoot: before, the whole image was read as 0..255, black
    near = [load_image(unit), load_image(img.astype(np.uint16)),
            load_image(img.astype(np.int32) * 257), load_image(img.astype(np.float64))]
    for arr in near:
        diff = np.abs(arr.astype(int) - img)
        diff[0, 0] = 0
        assert diff.max() <= 1
    # genuinely 16-bit data keeps its tonal range
    assert np.abs(load_image(img.astype(np.uint16) * 257).astype(int) - img).max() <= 1


def test_a_bgra_array_is_drawn_over_white_as_its_png_is(astronaut_path, tmp_path):
    img = load_image(astronaut_path)
    alpha = np.zeros(img.shape[:2], np.uint8)
    alpha[:, : img.shape[1] // 2] = 255  # right half transparent
    bgra = np.dstack([img, alpha])
    cv2.imwrite(str(tmp_path / "half.png"), bgra)
    from_array = load_image(bgra)
    assert np.array_equal(from_array, load_image(tmp_path / "half.png"))
    assert (from_array[:, -1] == 255).all()
    # alpha all 0 is what screen grabbers leave: it means nothing, the colours stay
    assert np.array_equal(load_image(np.dstack([img, np.zeros_like(alpha)])), img)


def test_a_pil_image_gets_the_checks_a_file_gets(astronaut_path, tmp_path, monkeypatch):
    from PIL import Image

    with pytest.raises(ImageLoadError, match="no pixels"):
        load_image(Image.new("RGB", (0, 0)))
    data = astronaut_path.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(Image.open(tmp_path / "cut.jpg"))  # opened lazily: fails on load
    monkeypatch.setenv("MASKFACE_MAX_PIXELS", "100000")
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(Image.open(astronaut_path))


def test_a_path_too_long_for_the_file_system_is_a_load_error():
    with pytest.raises(ImageLoadError, match="not a usable path"):
        load_image("a" * 5000)

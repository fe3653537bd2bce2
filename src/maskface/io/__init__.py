"""Decoding of images, videos and input sources."""

from maskface.io.image import ImageInput, decode_image, load_image

__all__ = ["ImageInput", "decode_image", "load_image"]

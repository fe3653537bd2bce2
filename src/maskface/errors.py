"""Exceptions for user-facing errors: each carries a one-line message fit to print as is."""

from __future__ import annotations


class MaskfaceError(Exception):
    """Base class: an error caused by input or environment, not a bug."""


class ModelError(MaskfaceError):
    """A model file is missing, altered or unloadable."""


class ImageLoadError(MaskfaceError):
    """An input image cannot be decoded or is out of bounds."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class ImageTooLargeError(ImageLoadError):
    """An input image exceeds the byte or pixel limits (refused before decoding)."""


class InputError(MaskfaceError):
    """A path, option or data layout given by the user is unusable."""

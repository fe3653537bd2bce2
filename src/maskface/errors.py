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


class MissingExtraError(MaskfaceError):
    """An optional part of the package is used without the extra that installs it."""


def require_extra(extra: str, *modules: str, doing: str) -> None:
    """Import ``modules`` or raise :class:`MissingExtraError` naming the first one missing and
    the ``pip install 'maskface[extra]'`` that brings it, e.g. ``doing="training"``."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise MissingExtraError(f"{doing} needs the '{extra}' extra ({name} missing): "
                                    f"pip install 'maskface[{extra}]'") from None

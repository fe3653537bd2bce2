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
    """Raise :class:`MissingExtraError` naming the first of ``modules`` (top-level names) that
    is not installed and the ``pip install 'maskface[extra]'`` that brings it, e.g.
    ``doing="training"``. Looks the modules up without importing them, so it is cheap."""
    from importlib.util import find_spec

    for name in modules:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
            found = False
        if not found:
            raise MissingExtraError(f"{doing} needs the '{extra}' extra ({name} missing): "
                                    f"pip install 'maskface[{extra}]'")

"""maskface: detect faces, classify masks and recognise people even with a mask on.

Quick start::

    import maskface
    result = maskface.analyze("photo.jpg")
    for face in result.faces:
        print(face.box, face.mask.label, face.mask.probability)
    result.plot()  # annotated BGR image
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskface.errors import ImageLoadError, InputError, MaskfaceError, ModelError

if TYPE_CHECKING:
    from maskface.results import Face, Identity, MaskPrediction, Result

__version__ = "0.1.0"

__all__ = [
    "Face",
    "Identity",
    "ImageLoadError",
    "InputError",
    "MaskPrediction",
    "MaskfaceError",
    "ModelError",
    "Pipeline",
    "Result",
    "analyze",
    "__version__",
]


def __getattr__(name: str):
    # Lazy so that `import maskface` (and so every CLI command's start, `--help` too) stays
    # cheap: no numpy, no model.
    if name in ("Pipeline", "analyze"):
        from maskface import pipeline

        return getattr(pipeline, name)
    if name in ("Face", "Identity", "MaskPrediction", "Result"):
        from maskface import results

        return getattr(results, name)
    raise AttributeError(name)


def __dir__() -> list[str]:
    # the lazy names too, so that dir(), help() and tab completion show them
    return sorted(set(globals()) | set(__all__))

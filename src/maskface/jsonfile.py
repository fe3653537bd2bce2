"""The one writer of JSON reports, records and cards: strict JSON that any tool can read."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by ``None``: Python writes them as
    the bare words ``NaN``/``Infinity``, which strict parsers (browsers, ``jq``) reject."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # a numpy scalar
        return finite(obj.item())
    return obj


def dumps(obj: Any, indent: int | None = 2) -> str:
    """``obj`` as strict JSON text: undefined figures as ``null``, numpy scalars as numbers."""
    return json.dumps(finite(obj), indent=indent, allow_nan=False)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON (undefined figures as ``null``) and return the path."""
    path = Path(path)
    path.write_text(dumps(obj, indent=indent))
    return path

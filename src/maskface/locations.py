"""What a location a user typed names (a URL, ``scheme://…``, or a local path) and where the
store is when none is named. Light on purpose: the store, the image loader, the service and
the CLI all ask it before touching anything."""

from __future__ import annotations

import os
import re
from pathlib import Path

# `Path` folds `//` into `/`, so a URL that went through one reads `scheme:/…`; a one-letter
# scheme is a Windows drive
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]+):/")


def url_scheme(location: str | os.PathLike) -> str | None:
    """The URL scheme ``location`` starts with, lower-cased, or ``None`` for a path."""
    m = _SCHEME.match(os.fspath(location))
    return m.group(1).lower() if m else None


def is_url(location: str | os.PathLike) -> bool:
    """Whether ``location`` names a URL rather than a local path."""
    return url_scheme(location) is not None


def default_db_path() -> Path | str:
    """The store every command and the service use when none is named: ``$MASKFACE_DB`` (a
    file or a ``postgresql://`` URL), else ``~/.local/share/maskface/gallery.db``."""
    env = os.environ.get("MASKFACE_DB")
    if env:  # a URL stays a string (a Path would fold its '//')
        return env if is_url(env) else Path(env).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "maskface" / "gallery.db"

"""Helpers shared by CLI commands: one-line errors and exit codes."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from maskface.errors import MaskfaceError
from maskface.progress import progress  # noqa: F401  (re-exported for the commands)

log = logging.getLogger("maskface")

#: the detector options of the commands that run the live path's detector (batch, watch, bench)
DetectorName = Annotated[str, typer.Option(help="yunet, retinaface or mtcnn.")]
DetectorSize = Annotated[int | None, typer.Option(
    min=32, help="Detector input size (YuNet: longest side); default: the detector's own.")]
ClassifierChoice = Annotated[str, typer.Option(
    help="Mask classifier ONNX file, 'default', or 'none'.")]


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def store_exists(db) -> bool:
    """Whether the store ``db`` is there to read: a PostgreSQL URL is taken as there (the
    server says otherwise), an SQLite file must exist."""
    from maskface.locations import is_url

    return is_url(str(db)) or Path(db).exists()


def require_store(db, what: str = "store") -> None:
    """Fail in one line when the SQLite store ``db`` does not exist, instead of making an empty
    one at a mistyped path and reporting on it as if it were the real one."""
    if not store_exists(db):
        fail(f"{db}: no {what} yet (check --db; 'maskface db migrate' makes an empty one)")


def output_file(path: Path | None) -> Path | None:
    """Option callback for a file to write (a report, an export): refused when parsing, before
    any work, if it is a folder or a file stands where one of its folders would go. The
    command makes the missing folders."""
    if path is None:
        return None
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a folder; give the name of a file to write")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise typer.BadParameter(f"{parent} is a file, so {path} cannot be written")
            break
    return path


def FileOption(*decls: str, **kwargs: Any) -> Any:
    """``typer.Option`` for a file the command writes: checked by :func:`output_file`."""
    return typer.Option(*decls, callback=output_file, **kwargs)


def output_folder(path: Path, name: str = "--out") -> Path:
    """Create the output folder ``path`` (and its parents), or fail in one line if it cannot be
    one (an existing file, or under one); ``name`` is how the command line calls it."""
    if path.exists() and not path.is_dir():
        fail(f"{path}: exists and is not a folder; give {name} a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        fail(f"{path}: cannot be a folder (a file is in the way); give {name} a folder")
    return path


def output_stem(stem: str, out: Path, suffixes: tuple[str, ...], inputs: set[Path],
                used: set[str]) -> str:
    """The stem of one input's outputs in ``out`` (``out/<stem><suffix>``): ``stem``, else
    ``stem_2``, ``stem_3``… when another input of the run took it or when one of those outputs
    would be an input itself (``--out`` the inputs' own folder: the annotated copy must not
    overwrite the photo or video it is made from). ``inputs`` are resolved paths; the stem
    chosen is added to ``used``."""
    name, k = stem, 1
    while name in used or any((out / f"{name}{s}").resolve() in inputs for s in suffixes):
        k += 1
        name = f"{stem}_{k}"
    used.add(name)
    return name


def user_errors(func: Callable) -> Callable:
    """Turn MaskfaceError (and a few OS errors) into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MaskfaceError as exc:
            fail(str(exc))
        except (FileNotFoundError, PermissionError, IsADirectoryError, FileExistsError,
                NotADirectoryError) as exc:
            fail(f"{exc.filename}: {exc.strerror}")
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper

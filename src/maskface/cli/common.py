"""Helpers shared by CLI commands: one-line errors and exit codes."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

import typer

from maskface.errors import MaskfaceError

log = logging.getLogger("maskface")


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(func: Callable) -> Callable:
    """Turn MaskfaceError (and a few OS errors) into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MaskfaceError as exc:
            fail(str(exc))
        except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            fail(f"{exc.filename}: {exc.strerror}")
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper

"""``maskface`` command line: mirrors the Python API (``maskface detect`` ↔ ``Pipeline``)."""

from __future__ import annotations

import importlib
import logging

from maskface.cli.apps import app

# One module per command family; each registers its commands on the apps in cli/apps.py.
COMMAND_MODULES = ("detect", "serve", "classifier", "synth", "bench", "watch", "batch",
                   "pipeline_eval", "recognition", "liveness", "db")


def load_commands():
    """Register every command family on the app and return it (commands import lazily)."""
    for mod in COMMAND_MODULES:
        importlib.import_module(f"maskface.cli.{mod}")
    return app


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    load_commands()()


__all__ = ["app", "load_commands", "main"]

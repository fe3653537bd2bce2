"""``maskface`` command line: mirrors the Python API (``maskface detect`` ↔ ``Pipeline``)."""

from __future__ import annotations

import importlib
import logging
import os

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
    # The CLI says in one line why a video, camera or stream would not open; OpenCV's and
    # FFmpeg's own warnings ("moov atom not found", V4L2 index errors) only repeat it in
    # their words. Set before cv2 loads; a user's own setting wins (see README).
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    load_commands()()


__all__ = ["app", "load_commands", "main"]

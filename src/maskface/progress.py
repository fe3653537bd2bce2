"""The one progress bar: tqdm on stderr, drawn only on a terminal.

Piped to a file or another program (a training log, ``2> eval.log``), a bar's carriage returns
and blanking spaces would land between the lines, so it is then off and the output is whole
lines. Write messages with ``tqdm.write`` while a bar is open, so they go through it.
"""

from __future__ import annotations

import sys


def progress(iterable=None, *, show: bool = True, **kwargs):
    """A tqdm bar over ``iterable`` (or a manual one with ``total=``); ``show=False`` turns it
    off everywhere, otherwise it is drawn when stderr (``file``) is a terminal."""
    from tqdm import tqdm

    if kwargs.get("disable") is not True:
        kwargs["disable"] = None if show else True  # tqdm: None = off when not a TTY
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, **kwargs)

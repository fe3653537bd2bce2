"""Input sources: files, folders (recursive), globs and videos behind one expander."""

from __future__ import annotations

import glob
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from maskface.io.image import IMAGE_SUFFIXES, looks_like_video
from maskface.locations import is_url

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg",
                            ".3gp", ".3g2", ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".asf",
                            ".ogv"})


@dataclass(frozen=True)
class Source:
    """One input: an image or a video file, or a path that could not be used (``error``)."""

    path: Path
    kind: str  # "image", "video" or "missing"
    error: str | None = None


def walk(folder: str | os.PathLike) -> Iterator[tuple[Path, list[str], list[str]]]:
    """``os.walk`` that follows symlinked folders, each real folder visited once (a link back
    to an ancestor cannot loop), with folder and file names sorted. Like ``os.walk``, callers
    may prune the yielded folder list in place. A link to a folder above ``folder`` is not
    followed: what is there is not inside it (a class folder's link up to the dataset would
    count the other classes' images as its own)."""
    above = {*Path(folder).absolute().parents, *Path(folder).resolve().parents}
    seen: set[tuple[int, int]] = {(st.st_dev, st.st_ino) for st in map(os.stat, above)}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        yield Path(dirpath), dirnames, sorted(filenames)


def files_under(folder: str | os.PathLike, suffixes: frozenset[str] | set[str]) -> list[Path]:
    """Files under ``folder`` with one of ``suffixes`` (lower case), recursively, following
    symlinked folders, sorted by path."""
    return sorted(d / f for d, _, files in walk(folder) for f in files
                  if Path(f).suffix.lower() in suffixes and (d / f).is_file())


class Sources(list):
    """The expanded sources (a list), and the files found in folders but passed over."""

    def __init__(self, items=(), skipped: list[Path] | None = None):
        super().__init__(items)
        #: files inside folder inputs that are neither images nor videos (by extension)
        self.skipped: list[Path] = skipped if skipped is not None else []

    def skipped_note(self) -> str | None:
        """One line saying how many folder files were skipped and why, or None."""
        if not self.skipped:
            return None
        kinds = Counter(p.suffix.lower() or "(no extension)" for p in self.skipped)
        what = ", ".join(f"{n} {k}" for k, n in kinds.most_common(5))
        more = ", ..." if len(kinds) > 5 else ""
        n = len(self.skipped)
        return (f"{n} file{'s' if n != 1 else ''} in folders skipped: not an image or video "
                f"({what}{more})")


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively (symlinked folders followed), sorted by path."""
    return files_under(folder, IMAGE_SUFFIXES)


def _kind(path: Path) -> str:
    """``video`` or ``image``: by the name's suffix, else (no suffix, or one we do not know) by
    the file's first bytes, so a phone's clip saved without its extension is still a video."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix not in IMAGE_SUFFIXES:
        try:
            with open(path, "rb") as f:
                if looks_like_video(f.read(189)):
                    return "video"
        except OSError:
            pass  # the loader says what is wrong with it
    return "image"


def expand_sources(inputs: list[str]) -> Sources:
    """Expand CLI inputs into sources, in a stable order, without duplicates.

    Folders are searched recursively (following symlinked folders) for image and video files;
    globs are expanded; any other file is taken as an image (the loader reports it if it is
    not one); a path that does not exist, or a folder with no image or video in it, becomes a
    ``missing`` source so the caller can report it and go on. Files in folders that are
    neither are listed in the result's ``skipped``, for the caller's summary.
    """
    out = Sources()
    seen: set[Path] = set()
    passed_over: dict[Path, Path] = {}

    def add(src: Source) -> None:
        key = src.path.resolve() if src.kind != "missing" else src.path
        if key not in seen:
            seen.add(key)
            out.append(src)

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = False
            for d, _, files in walk(path):
                for f in files:
                    p = d / f
                    if not p.is_file():
                        continue
                    kind = _kind(p)
                    if kind == "video" or p.suffix.lower() in IMAGE_SUFFIXES:
                        add(Source(p, kind))
                        found = True
                    else:
                        passed_over.setdefault(p.resolve(), p)
            if not found:  # said of the folder, not "no inputs given"
                add(Source(path, "missing", "no images or videos in this folder"))
        elif path.is_file():
            add(Source(path, _kind(path)))
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                add(Source(path, "missing", "no file matches this pattern"))
            for m in files:
                add(Source(m, _kind(m)))
        elif is_url(item):
            add(Source(path, "missing", "URLs are not fetched: download the file first "
                       "('maskface watch URL' reads a live stream)"))
        else:
            add(Source(path, "missing", "no such file or folder"))
    # a file passed over in a folder but also given by name is an input, not skipped
    out.skipped = [p for key, p in passed_over.items() if key not in seen]
    return out

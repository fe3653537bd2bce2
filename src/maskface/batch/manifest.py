"""The done-list that makes ``maskface batch`` resumable.

One JSON line per finished input, keyed by path, size and modification time: an input is
skipped when all three match and its latest line says it succeeded (a file edited or replaced
since is processed again, and so is one that failed: it may have been fixed in place, or the
failure may have been ours). Lines are appended only after that input's result has been
written, so a crash loses at most the batch in flight; a torn last line is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class InputFile:
    """An input image and the identity of its content at listing time."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | Path) -> InputFile:
        st = os.stat(path)
        return cls(str(Path(path).absolute()), st.st_size, st.st_mtime_ns)

    @property
    def key(self) -> tuple[str, int, int]:
        return self.path, self.size, self.mtime_ns


class Manifest:
    """Append-only record of the inputs already processed; ``in`` means it succeeded."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.done: set[tuple[str, int, int]] = set()
        #: inputs whose latest attempt failed (processed again by the next run)
        self.failed: set[tuple[str, int, int]] = set()
        if self.path.is_file():
            with open(self.path) as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                        key = rec["path"], int(rec["size"]), int(rec["mtime_ns"])
                    except (ValueError, KeyError, TypeError):
                        continue  # a line torn by a crash: that input is simply redone
                    self._mark(key, failed=rec.get("status") == "failed")

    def _mark(self, key: tuple[str, int, int], failed: bool) -> None:
        (self.failed if failed else self.done).add(key)
        (self.done if failed else self.failed).discard(key)

    def __contains__(self, item: InputFile) -> bool:
        return item.key in self.done

    def __len__(self) -> int:
        return len(self.done)

    def add(self, items: list[tuple[InputFile, str | None]]) -> None:
        """Record finished inputs (each with its error, ``None`` when it succeeded)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            # A line torn by a crash would swallow the first new record: end it first.
            end = f.seek(0, os.SEEK_END)
            if end:
                f.seek(end - 1)
                if f.read(1) != b"\n":
                    f.write(b"\n")  # appends go to the end whatever the position
            for item, error in items:
                f.write(json.dumps({**asdict(item), "status": "failed" if error else "ok",
                                    "error": error}).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        for item, error in items:
            self._mark(item.key, failed=bool(error))

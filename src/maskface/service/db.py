"""SQLite connections for the service's own tables (API keys, events, settings).

They live in the same database file as the gallery, so one file holds everything a deployment
must back up. Each operation opens its own short-lived connection: SQLite connections are not
shared across threads, and opening one costs microseconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from maskface.errors import MaskfaceError


class StoreError(MaskfaceError):
    """The database file cannot be opened or written (locked, read-only, corrupt)."""


@contextmanager
def connect(path: str | Path, write: bool = True) -> Iterator[sqlite3.Connection]:
    """A connection in WAL mode whose transaction commits when the block ends without error.

    Writers take the write lock up front (``BEGIN IMMEDIATE``) so two writers queue instead of
    failing half-way; readers do not block anyone.

    ``synchronous=FULL``: a committed row is on disk before the API answers, so neither a killed
    server nor a power cut loses an acknowledged enrolment or event.
    """
    try:
        conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open database ({exc})") from None
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: database error ({exc})") from None
    finally:
        conn.close()

"""The SQLite back end: one file, one connection helper, one deliberate set of pragmas."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from maskface.storage.base import Database, IntegrityError, StoreError, Transaction

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000

#: Applied to every connection (the file itself is in WAL mode, see SQLiteDatabase):
#: synchronous=FULL (a committed row is on disk before
#: the API answers, so neither a killed server nor a power cut loses an acknowledged enrolment
#: or event); foreign keys (deleting a person cascades to their embeddings); a busy timeout
#: (two processes writing at once queue instead of failing).
PRAGMAS = (f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}", "PRAGMA foreign_keys=ON",
           "PRAGMA synchronous=FULL")


class _SQLiteTx(Transaction):
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)


class SQLiteDatabase(Database):
    """An SQLite file. Each write transaction opens its own short-lived connection; reads reuse
    one connection per thread (SQLite connections are not shared across threads), which keeps
    the per-search version check of the gallery cheap."""

    kind = "sqlite"
    types = {"pk": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "real": "REAL",
             "bigint": "INTEGER"}

    def __init__(self, path: Path):
        self.path = Path(path)
        self.location = str(self.path)
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder, not a database file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        try:
            # Read before any write: a corrupt or foreign file fails here, untouched.
            with self.transaction(write=False) as tx:
                tables = self.tables(tx)
        except StoreError as exc:
            raise StoreError(f"{self.path}: not a usable gallery database ({exc.__cause__ or exc}"
                             "); the file was left as it is") from None
        if tables and "meta" not in tables:
            raise StoreError(f"{self.path}: an SQLite file that is not a maskface gallery; "
                             "the file was left as it is")
        conn = self._connect()
        try:  # WAL is a property of the file: set once (readers never block the writer)
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot use database ({exc})") from None
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open database ({exc})") from None
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            try:
                for p in PRAGMAS:
                    conn.execute(p)
            except sqlite3.Error:
                conn.close()
                raise
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Transaction]:
        reuse = not write and not getattr(self._local, "busy", False)
        conn = None
        try:
            if reuse:
                conn = self._reader()
                self._local.busy = True
            else:
                conn = self._connect()
                for p in PRAGMAS:
                    conn.execute(p)
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SQLiteTx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreError(f"{self.path}: database is locked by another process ({exc}); "
                                 "try again") from exc
            raise StoreError(f"{self.path}: database error ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: database error ({exc})") from exc
        finally:
            if reuse:
                self._local.busy = False
            elif conn is not None:
                conn.close()

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()

    def tables(self, tx: Transaction) -> set[str]:
        return {r[0] for r in tx.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")}

    def columns(self, tx: Transaction, table: str) -> set[str]:
        return {r[1] for r in tx.execute(f"PRAGMA table_info({table})")}

    def maintenance_after_delete(self) -> None:
        # Biometric data must be erasable: checkpoint so deleted vectors leave the WAL.
        conn = self._connect()
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:  # busy readers: the next checkpoint will do it
            log.debug("checkpoint after delete postponed")
        finally:
            conn.close()

    def integrity_check(self) -> bool:
        with self.transaction(write=False) as tx:
            return tx.one("PRAGMA integrity_check") == "ok"

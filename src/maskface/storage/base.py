"""The storage interface both back ends implement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from maskface.errors import MaskfaceError


class StoreError(MaskfaceError):
    """The store cannot be opened or written (locked, read-only, corrupt, unreachable)."""


class IntegrityError(StoreError):
    """A write broke a constraint (a duplicate unique value, a missing referenced row)."""


class Transaction(ABC):
    """One open transaction. SQL uses ``?`` placeholders on both back ends."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns a cursor (``fetchone``, ``fetchall``, ``rowcount``)."""

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each row of parameters."""

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an ``INSERT`` into a table with an ``id`` key; returns the new row's id."""
        return int(self.execute(sql + " RETURNING id", params).fetchone()[0])

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or ``None``."""
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]


class Database(ABC):
    """A maskface store: shared by the gallery, the key store, the settings and the event log.

    Thread-safe: each :meth:`transaction` takes its own connection.
    """

    #: ``"sqlite"`` or ``"postgresql"``
    kind: str
    #: where it is, without any password (for messages and ``/v1/health``)
    location: str

    @abstractmethod
    def transaction(self, write: bool = True) -> AbstractContextManager[Transaction]:
        """A transaction that commits when the block ends without error, else rolls back.
        ``write=False`` promises only reads (SQLite then does not take the write lock)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    # -- dialect ----------------------------------------------------------------------------
    #: column types and clauses that differ between the back ends (used by the migrations)
    types: dict[str, str]

    @abstractmethod
    def columns(self, tx: Transaction, table: str) -> set[str]:
        """The column names of ``table`` (empty when it does not exist)."""

    @abstractmethod
    def tables(self, tx: Transaction) -> set[str]:
        """The tables in the store."""

    def lock_schema(self, tx: Transaction) -> None:
        """Serialise schema migrations between processes (inside ``tx``)."""
        return None  # nothing to do on this back end

    def reset_sequence(self, tx: Transaction, table: str) -> None:
        """After rows were inserted with explicit ids: new ids continue after the largest."""
        return None  # nothing to do on this back end

    def maintenance_after_delete(self) -> None:
        """Make deleted rows unrecoverable from the store's journal where it has one."""
        return None  # nothing to do on this back end

    def describe(self) -> dict[str, Any]:
        """What ``/v1/health`` reports: back end, location and schema version."""
        from maskface.storage.schema import SCHEMA_VERSION, schema_version

        with self.transaction(write=False) as tx:
            version = schema_version(tx)
        return {"backend": self.kind, "location": self.location, "schema_version": version,
                "schema_latest": SCHEMA_VERSION}

    # -- schema -----------------------------------------------------------------------------
    def migrate(self) -> tuple[int, int]:
        """Apply every pending migration; returns ``(version before, version after)``."""
        from maskface.storage.schema import migrate

        return migrate(self)

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

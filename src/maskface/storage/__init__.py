"""One storage layer for everything a deployment keeps: people, embeddings, API keys, policy and
the event log. Two back ends behind one interface (:class:`Database`):

* **SQLite** (the embedded default): one file, WAL, ``synchronous=FULL``, foreign keys on, write
  transactions taken up front (``BEGIN IMMEDIATE``) so writers queue instead of failing.
* **PostgreSQL** (``postgresql://user@host/db``): psycopg 3 with a connection pool, for several
  service replicas sharing one store.

Both share the migrations in :mod:`maskface.storage.schema` and the SQL of every store: queries
use ``?`` placeholders and portable SQL (``ON CONFLICT``, ``RETURNING``).

Example::

    from maskface.storage import open_database
    db = open_database("postgresql://maskface@db.internal/maskface")   # or "people.db"
    with db.transaction() as tx:
        pid = tx.insert("INSERT INTO people (name, metadata, created_at) VALUES (?, ?, ?)",
                        ("Alice", "{}", "2026-01-01"))
"""

from __future__ import annotations

import os
from pathlib import Path

from maskface.locations import url_scheme
from maskface.storage.base import Database, IntegrityError, StoreError, Transaction


def is_postgres_url(location: str | os.PathLike) -> bool:
    """Whether ``location`` names a PostgreSQL server rather than an SQLite file."""
    return str(location).startswith(("postgresql://", "postgres://"))


def _not_a_store_url(location: str | os.PathLike) -> None:
    """Refuse a URL of any other scheme, which would otherwise become an SQLite file named
    after it (``mysql:/host/db``)."""
    scheme = url_scheme(location)
    if scheme is not None and not is_postgres_url(location):
        hint = (" (for SQLite give the file's path)" if scheme.startswith("sqlite") else
                " (a URL of 'postgresql://' whose '//' was lost?)" if scheme.startswith("postgres")
                else "")
        raise StoreError(f"{os.fspath(location)}: not a store maskface can use: give an SQLite "
                         f"file path or a postgresql:// URL{hint}")


def open_database(location: str | os.PathLike | Database, migrate: bool = True) -> Database:
    """The database at ``location``: a ``postgresql://`` URL or an SQLite file path (created
    with its folder when missing). A :class:`Database` passes through unchanged.

    ``migrate``: bring the schema up to date (creating it in a new database). Raises
    :class:`StoreError` when the store cannot be reached or is not a maskface store.
    """
    if isinstance(location, Database):
        return location
    _not_a_store_url(location)
    if is_postgres_url(location):
        from maskface.storage.postgres import PostgresDatabase

        db: Database = PostgresDatabase(str(location))
    else:
        from maskface.storage.sqlite import SQLiteDatabase

        db = SQLiteDatabase(Path(location))
    if migrate:
        try:
            db.migrate()
        except BaseException:
            db.close()
            raise
    return db


__all__ = ["Database", "IntegrityError", "StoreError", "Transaction", "is_postgres_url",
           "open_database"]

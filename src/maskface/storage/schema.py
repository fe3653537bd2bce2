"""Schema migrations shared by both back ends.

Each migration is a list of statements (with ``{pk}``, ``{blob}``, ``{real}``, ``{bigint}``
standing for the back end's types) or a function of ``(database, transaction)``. The store's
version is ``meta.schema_version``; all pending migrations run in one transaction, serialised
between processes, so replicas starting together migrate once.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from maskface.storage.base import Database, StoreError, Transaction


def _events_liveness(db: Database, tx: Transaction) -> None:
    # Stores made before the liveness column (older rows read NULL).
    if "liveness" not in db.columns(tx, "events"):
        tx.execute("ALTER TABLE events ADD COLUMN liveness {real}".format(**db.types))


def _events_door(db: Database, tx: Transaction) -> None:
    # Which door (kiosk key) made each check; rows recorded before read NULL.
    if "door" not in db.columns(tx, "events"):
        tx.execute("ALTER TABLE events ADD COLUMN door TEXT")
    tx.execute("CREATE INDEX IF NOT EXISTS events_door ON events (door, time)")


Migration = list[str] | Callable[[Database, Transaction], None]

MIGRATIONS: list[Migration] = [
    # 1: the gallery (the SQLite gallery's original schema)
    ["""CREATE TABLE IF NOT EXISTS people (
            id         {pk},
            name       TEXT NOT NULL UNIQUE,
            metadata   TEXT NOT NULL DEFAULT '{{}}',
            created_at TEXT NOT NULL)""",
     """CREATE TABLE IF NOT EXISTS embeddings (
            id         {pk},
            person_id  {bigint} NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            model      TEXT NOT NULL,
            dim        INTEGER NOT NULL,
            masked     INTEGER NOT NULL DEFAULT 0,
            vector     {blob} NOT NULL,
            source     TEXT,
            created_at TEXT NOT NULL)""",
     "CREATE INDEX IF NOT EXISTS embeddings_person ON embeddings(person_id)"],
    # 2: the service's tables (made on demand by older versions, hence IF NOT EXISTS) and the
    # gallery's change counter, which replicas poll to know their search index is stale
    ["""CREATE TABLE IF NOT EXISTS api_keys (
            key_id   TEXT PRIMARY KEY,
            role     TEXT NOT NULL,
            label    TEXT NOT NULL DEFAULT '',
            salt     {blob} NOT NULL,
            digest   {blob} NOT NULL,
            created  {real} NOT NULL,
            revoked  {real})""",
     """CREATE TABLE IF NOT EXISTS events (
            id          {pk},
            time        {real} NOT NULL,
            person_id   {bigint},
            person_name TEXT,
            decision    TEXT NOT NULL,
            reasons     TEXT NOT NULL,
            temperature {real},
            mask        TEXT,
            score       {real},
            faces       INTEGER NOT NULL,
            snapshot    TEXT)""",
     "CREATE INDEX IF NOT EXISTS events_time ON events (time)",
     "CREATE INDEX IF NOT EXISTS events_person ON events (person_id, time)",
     "CREATE TABLE IF NOT EXISTS service_settings (key TEXT PRIMARY KEY, value TEXT)",
     "CREATE TABLE IF NOT EXISTS gallery_version (id INTEGER PRIMARY KEY, version {bigint})",
     "INSERT INTO gallery_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING"],
    # 3: events.liveness (issue 11)
    _events_liveness,
    # 4: the gallery's audit log (issue 15; made on first use before). No foreign key: the
    # record of what was done to a person outlives the person.
    ["""CREATE TABLE IF NOT EXISTS audit (
            id          {pk},
            time        TEXT NOT NULL,
            action      TEXT NOT NULL,
            person_id   {bigint},
            person_name TEXT,
            details     TEXT NOT NULL DEFAULT '{{}}')"""],
    # 5: events.door, the kiosk key's label (many doors, one store)
    _events_door,
]

#: the schema version this maskface writes
SCHEMA_VERSION = len(MIGRATIONS)

#: every table, parents before children (export and import follow this order)
#: what ``events.snapshot`` may hold: a name the service made (``<uuid hex>.jpg``), never a
#: path; anything else (an edited export) is refused on import and never opened or deleted
SNAPSHOT_NAME = re.compile(r"[0-9a-f]{32}\.jpg")

TABLES = ("meta", "people", "embeddings", "api_keys", "events", "service_settings",
          "gallery_version", "audit")


def schema_version(tx: Transaction) -> int:
    value = tx.one("SELECT value FROM meta WHERE key = 'schema_version'")
    return int(value) if value is not None else 0


def migrate(db: Database) -> tuple[int, int]:
    """Bring ``db`` to :data:`SCHEMA_VERSION`; returns ``(before, after)``."""
    with db.transaction() as tx:
        db.lock_schema(tx)
        tables = db.tables(tx)
        if tables and "meta" not in tables:
            raise StoreError(f"{db.location}: holds tables but is not a maskface gallery database; "
                             "it was left as it is")
        tx.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        before = schema_version(tx)
        if before > SCHEMA_VERSION:
            raise StoreError(f"{db.location}: store schema {before} is newer than this maskface "
                             f"supports ({SCHEMA_VERSION}); upgrade maskface")
        for step in MIGRATIONS[before:]:
            if callable(step):
                step(db, tx)
            else:
                for stmt in step:
                    tx.execute(stmt.format(**db.types))
        if before < SCHEMA_VERSION:
            tx.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       (str(SCHEMA_VERSION),))
    return before, SCHEMA_VERSION

"""``maskface db export`` / ``import``: a whole store as one JSON Lines file, to move a building
from SQLite to PostgreSQL (or back) without re-enrolling anyone.

The first line is a header (format, schema version, row counts); each further line is one row,
``{"t": table, "r": {column: value}}``, with binary values (embeddings, key digests) as
``{"b64": ...}``. Rows keep their ids, so events still point at the same people.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from maskface.errors import InputError
from maskface.storage.base import Database
from maskface.storage.schema import SCHEMA_VERSION, SNAPSHOT_NAME, TABLES, schema_version

FORMAT = "maskface-store-export"
#: rows the target must not already hold: importing merges nothing, it moves a whole store
_CONTENT = ("people", "embeddings", "api_keys", "events", "audit")
#: managed by each store itself
_SKIP_META = {"schema_version"}


def _encode(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"b64": base64.b64encode(bytes(v)).decode()}
    return v


def _decode(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"b64"}:
        return base64.b64decode(v["b64"])
    return v


def export_store(db: Database, out: str | Path) -> dict[str, int]:
    """Write every table of ``db`` (one consistent snapshot) to ``out``; returns rows per table."""
    out = Path(out)
    if db.kind == "sqlite":
        store = Path(db.location).resolve()
        if out.resolve() in {store, *(store.with_name(store.name + s)
                                      for s in ("-wal", "-shm", "-journal"))}:
            raise InputError(f"{out}: is the store being exported; give another file name")
    counts: dict[str, int] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with db.transaction(write=False) as tx, open(tmp, "w", encoding="utf-8") as f:
        version = schema_version(tx)
        present = db.tables(tx)
        lines = []
        for table in TABLES:
            if table not in present:
                continue
            cur = tx.execute(f"SELECT * FROM {table} ORDER BY 1")
            cols = [d[0] for d in cur.description]
            n = 0
            for row in cur.fetchall():
                lines.append(json.dumps({"t": table, "r": {c: _encode(v) for c, v in
                                                           zip(cols, row)}}))
                n += 1
            counts[table] = n
        f.write(json.dumps({"format": FORMAT, "schema_version": version, "rows": counts}) + "\n")
        for line in lines:
            f.write(line + "\n")
    tmp.replace(out)
    return counts


def _insert(tx, table: str, row: dict[str, Any]) -> None:
    if table == "gallery_version" or (table == "meta" and row.get("key") in _SKIP_META):
        return
    cols = ", ".join(row)
    marks = ", ".join("?" * len(row))
    if table == "meta":
        tx.execute(f"INSERT INTO meta ({cols}) VALUES ({marks}) ON CONFLICT (key) "
                   "DO UPDATE SET value = excluded.value", list(row.values()))
    else:
        tx.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(row.values()))


def export_file(src: str | Path) -> Path:
    """``src`` if it is a file to import, else InputError: checked before the target store is
    opened, which would create an empty one for an import that cannot happen."""
    src = Path(src)
    if src.is_dir():
        raise InputError(f"{src}: is a folder; give the file 'maskface db export' wrote")
    if not src.is_file():
        raise InputError(f"{src}: no such export file")
    return src


def import_store(db: Database, src: str | Path) -> dict[str, int]:
    """Load an export into ``db``, which must hold no people, embeddings, keys, events or audit
    records yet; everything goes in one transaction (all or nothing). Returns rows per table."""
    src = export_file(src)
    with open(src, encoding="utf-8") as f:
        try:
            header = json.loads(f.readline() or "{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            header = {}
        if not isinstance(header, dict):
            header = {}
        if header.get("format") != FORMAT:
            raise InputError(f"{src}: not a maskface store export")
        try:
            version = int(header.get("schema_version", 0))
            expected = {str(t): int(n) for t, n in header.get("rows", {}).items()
                        if t not in ("gallery_version", "meta")}
        except (TypeError, ValueError, AttributeError):
            raise InputError(f"{src}: its header is damaged (schema_version and rows)"
                             ) from None
        if version > SCHEMA_VERSION:
            raise InputError(f"{src}: exported from a newer schema ({version}) than this "
                             f"maskface supports ({SCHEMA_VERSION}); upgrade maskface")
        counts: dict[str, int] = {}
        with db.transaction() as tx:
            busy = [t for t in _CONTENT if tx.one(f"SELECT COUNT(*) FROM {t}")]
            if busy:
                raise InputError(f"{db.location}: already holds {', '.join(busy)}; import into "
                                 "an empty store (a new SQLite file or PostgreSQL database)")
            tx.execute("DELETE FROM service_settings")
            line_no = 1
            try:
                for line_no, line in enumerate(f, 2):  # noqa: B007 - used in the message
                    item = json.loads(line)
                    table, row = item["t"], {k: _decode(v) for k, v in item["r"].items()}
                    if table not in TABLES:
                        raise InputError(f"{src}:{line_no}: unknown table '{table}'")
                    snap = row.get("snapshot") if table == "events" else None
                    if snap is not None and not (isinstance(snap, str)
                                                 and SNAPSHOT_NAME.fullmatch(snap)):
                        raise InputError(f"{src}:{line_no}: an event's snapshot {snap!r:.80} "
                                         "is not a name the service makes; nothing imported")
                    _insert(tx, table, row)
                    counts[table] = counts.get(table, 0) + 1
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError,
                    AttributeError):
                raise InputError(f"{src}:{line_no}: not an export row") from None
            got = {t: counts.get(t, 0) for t in expected}
            if got != expected:  # raised inside the transaction: nothing is imported
                raise InputError(f"{src}: truncated export (the header promises {expected}, "
                                 f"the file holds {got}); nothing was imported")
            for table in ("people", "embeddings", "events", "audit"):
                db.reset_sequence(tx, table)
            # Every replica's search index reloads.
            tx.execute("UPDATE gallery_version SET version = version + 1 WHERE id = 1")
    return counts

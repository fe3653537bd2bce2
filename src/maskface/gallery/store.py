"""The gallery: enrolled people and their face embeddings in the shared store
(:mod:`maskface.storage`: an SQLite file or a PostgreSQL database).

Every change is one transaction, foreign keys with ``ON DELETE CASCADE`` erase every embedding of
a deleted person, and concurrent writers queue instead of failing. Embeddings are float32 blobs
tagged with the model that made them; a gallery holds one model's embeddings only (vectors of
different models are not comparable).

Search runs over an index in memory (:class:`~maskface.gallery.index.AutoIndex`: exact, IVF
for large galleries), rebuilt when the store changes: every gallery write bumps
``gallery_version`` in its own transaction and every search first reads it, so a search that
starts after another process (another service replica) committed an enrolment or a deletion
sees it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from maskface.errors import InputError, MaskfaceError
from maskface.gallery.index import AutoIndex, GalleryIndex
from maskface.locations import default_db_path
from maskface.storage import (
    Database,
    IntegrityError,
    StoreError,
    Transaction,
    open_database,
)

log = logging.getLogger(__name__)

#: the range of a 64-bit row id, SQLite's INTEGER and PostgreSQL's BIGINT alike (a row id
#: outside it is nobody, not an overflow error)
_ROW_ID_MIN, _ROW_ID_MAX = -(2**63), 2**63 - 1


class GalleryError(MaskfaceError):
    """The gallery file is unusable (corrupt, locked, foreign) or a request cannot be met."""


class UnknownPersonError(GalleryError):
    """No enrolled person has this id or name."""


class DuplicateNameError(GalleryError):
    """A person with this name is already enrolled."""


class GalleryChangedError(GalleryError):
    """The gallery changed since the version a write was checked against (another enrolment
    came first): nothing was written; check again and retry."""


@dataclass(frozen=True)
class Person:
    """An enrolled person (without their embeddings)."""

    id: int
    name: str
    metadata: dict[str, Any]
    created_at: str
    n_embeddings: int = 0
    n_masked: int = 0
    #: of which synthetic masked templates (``maskface.recognize.templates``), not photos
    n_templates: int = 0

    @property
    def groups(self) -> list[str]:
        """The groups a policy's ``allowed_groups`` is checked against (``metadata["groups"]``)."""
        return list(self.metadata.get("groups", []))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "metadata": self.metadata,
                "created_at": self.created_at, "embeddings": self.n_embeddings,
                "masked_embeddings": self.n_masked, "masked_templates": self.n_templates}


@dataclass(frozen=True)
class AuditEvent:
    """One recorded administrative act on the gallery (e.g. a duplicate enrolment let through)."""

    id: int
    time: str
    action: str
    person_id: int | None
    person_name: str | None
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "time": self.time, "action": self.action,
                "person_id": self.person_id, "person_name": self.person_name,
                "details": self.details}


@dataclass(frozen=True)
class Match:
    """Outcome of a 1:N search for one query embedding.

    ``person``/``name`` are the best candidate, ``known`` says whether its score reached the
    threshold (open set: below it the face is "unknown"); ``candidates`` lists the best few
    ``(person_id, name, score)``.
    """

    person_id: int | None
    name: str | None
    score: float
    threshold: float
    candidates: list[tuple[int, str, float]] = field(default_factory=list)
    #: comparison condition of the best candidate (``maskface.gallery.thresholds.CONDITIONS``),
    #: set when the probe's mask state was given
    condition: str | None = None

    @property
    def known(self) -> bool:
        return self.person_id is not None

    def to_dict(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "name": self.name, "score": round(self.score, 4),
                "threshold": round(self.threshold, 4), "known": self.known,
                "candidates": [{"person_id": p, "name": n, "score": round(s, 4)}
                               for p, n, s in self.candidates]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


#: explicit embeddings, overrides and isolates: "\u202eevil" displays reversed
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_name(name: str) -> str:
    """The trimmed name in Unicode's composed form (NFC), or :class:`InputError` (empty, only
    digits, nothing visible, over 200 characters, or holding line breaks, control characters
    or text-direction controls, which would break or disguise every list and log line it is
    in)."""
    # composed: "Zoë" typed on two keyboards is one name, not two people who look the same
    name = unicodedata.normalize("NFC", (name or "").strip())
    if not name:
        raise InputError("a person's name must not be empty")
    if name.isdigit():  # every command takes "a name or an id": "3" would shadow id 3
        raise InputError(f"a person's name must not be only digits ('{name}' reads as an id)")
    if len(name) > 200:
        raise InputError("a person's name must be at most 200 characters")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
        raise InputError("a person's name must not contain line breaks, tabs or other "
                         "control characters")
    if any(c in _BIDI_CONTROLS for c in name):
        raise InputError("a person's name must not contain text-direction controls (they "
                         "make a name display as another)")
    if not any(unicodedata.category(c)[0] in "LNS" for c in name):
        # zero-width spaces, a soft hyphen, a byte-order mark: a person listed with no name
        raise InputError("a person's name must have a letter, digit or symbol in it")
    return name


class Gallery:
    """A persistent gallery of enrolled people (thread-safe; several processes may share it).

    Args:
        path: the SQLite file (created with its folder if missing), a ``postgresql://`` URL,
            or an open :class:`~maskface.storage.Database` shared with other stores.
        model: name of the embedder whose vectors this gallery holds (e.g. ``"sface"``); the
            first gallery to write fixes it and later writes with another model are refused.
            ``None`` opens any gallery read-only-compatible (listing, renaming, deleting).
        dim: the embedder's dimension, checked the same way.
        index: the search index (default :class:`AutoIndex`: exact below 200,000 embeddings,
            approximate IVF above).

    Raises:
        GalleryError: the file is not a maskface gallery, is corrupt, or is locked too long.
    """

    def __init__(self, path: str | os.PathLike | Database | None = None,
                 model: str | None = None, dim: int | None = None,
                 index: GalleryIndex | None = None):
        self._owns_db = not isinstance(path, Database)
        try:
            self.db = open_database(path if path is not None else default_db_path())
        except StoreError as exc:
            raise GalleryError(str(exc)) from None
        self.path = Path(self.db.location) if self.db.kind == "sqlite" else self.db.location
        self.model = model
        self.dim = dim
        self.index: GalleryIndex = index if index is not None else AutoIndex()
        self._lock = threading.RLock()
        self._names: dict[int, str] = {}
        self._cache_key: int | None = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # -- connection ---------------------------------------------------------------------------
    def _open(self) -> None:
        stored_model, stored_dim = self._meta("model"), self._meta("dim")
        if self.model and stored_model and stored_model != self.model:
            raise GalleryError(
                f"{self.path}: gallery holds '{stored_model}' embeddings; they cannot be "
                f"compared with model '{self.model}' (use another --db or re-enrol)")
        if self.dim and stored_dim and int(stored_dim) != self.dim:
            raise GalleryError(f"{self.path}: gallery holds {stored_dim}-d embeddings, "
                               f"the model makes {self.dim}-d ones")
        self.model = self.model or stored_model
        self.dim = self.dim or (int(stored_dim) if stored_dim else None)

    def close(self) -> None:
        """Close the database (unless it was handed in open, shared with other stores)."""
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _transaction(self, expect_version: int | None = None) -> Iterator[Transaction]:
        """One write transaction, rolled back on any error; it bumps the gallery's version so
        every process's search index sees the change.

        With ``expect_version`` the bump comes first and only from that version (one
        compare-and-set, atomic on both back ends: writers queue on the version row), else
        :class:`GalleryChangedError` and nothing is written: a check made at that version
        (the duplicate check) still holds when the write commits.
        """
        try:
            with self.db.transaction() as tx:
                if expect_version is not None:
                    cur = tx.execute("UPDATE gallery_version SET version = version + 1 "
                                     "WHERE id = 1 AND version = ?", (int(expect_version),))
                    if cur.rowcount != 1:
                        raise GalleryChangedError("the gallery changed since it was checked; "
                                                  "check again")
                yield tx
                if expect_version is None:
                    tx.execute("UPDATE gallery_version SET version = version + 1 WHERE id = 1")
        except (IntegrityError, GalleryChangedError):
            raise
        except StoreError as exc:
            raise GalleryError(f"{exc}; try again") from None

    @contextmanager
    def _read(self) -> Iterator[Transaction]:
        """One read-only transaction (a consistent snapshot)."""
        try:
            with self.db.transaction(write=False) as tx:
                yield tx
        except StoreError as exc:
            raise GalleryError(str(exc)) from None

    def version(self) -> int:
        """The gallery's change counter (every write bumps it; shared by all processes)."""
        with self._read() as tx:
            return int(tx.one("SELECT version FROM gallery_version WHERE id = 1"))

    def _meta(self, key: str) -> str | None:
        with self._read() as tx:
            return tx.one("SELECT value FROM meta WHERE key=?", (key,))

    def get_meta(self, key: str) -> str | None:
        """A value of the gallery's ``meta`` table (e.g. its threshold calibration)."""
        with self._lock:
            return self._meta(key)

    def set_meta(self, key: str, value: str) -> None:
        """Set a ``meta`` value (the schema's own keys are not writable here)."""
        if key in ("schema_version", "model", "dim"):
            raise InputError(f"meta key '{key}' is managed by the gallery")
        with self._transaction() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (key, value))

    # -- people -------------------------------------------------------------------------------
    def _bind_model(self, conn: Transaction, dim: int) -> None:
        if not self.model:
            raise InputError("open the gallery with the embedder's model name to add embeddings")
        if self.dim and dim != self.dim:
            raise InputError(f"embeddings are {dim}-d, the gallery's model makes {self.dim}-d")
        stored = conn.execute("SELECT value FROM meta WHERE key='model'").fetchone()
        if stored and stored[0] != self.model:
            raise GalleryError(f"{self.path}: gallery holds '{stored[0]}' embeddings, "
                               f"not '{self.model}'")
        conn.execute("INSERT INTO meta (key, value) VALUES ('model', ?) ON CONFLICT (key) "
                     "DO NOTHING", (self.model,))
        conn.execute("INSERT INTO meta (key, value) VALUES ('dim', ?) ON CONFLICT (key) "
                     "DO NOTHING", (str(dim),))
        self.dim = dim

    @staticmethod
    def _vectors(embeddings: np.ndarray) -> np.ndarray:
        try:
            e = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        except (TypeError, ValueError):  # a string, ragged lists, objects
            raise InputError("embeddings must be a non-empty finite (N, D) array of numbers, "
                             f"not {type(embeddings).__name__}") from None
        if e.ndim != 2 or len(e) == 0 or not np.isfinite(e).all():
            raise InputError("embeddings must be a non-empty finite (N, D) array")
        norms = np.linalg.norm(e, axis=1, keepdims=True)
        if (norms < 1e-6).any():
            raise InputError("an embedding has zero length")
        return e / norms

    def _insert_embeddings(self, conn: Transaction, person_id: int, emb: np.ndarray,
                           masked: Iterable[bool] | bool, sources: Iterable[str | None] | None
                           ) -> int:
        flags = [bool(masked)] * len(emb) if isinstance(masked, (bool, np.bool_)) else \
            [bool(m) for m in masked]
        srcs = list(sources) if sources is not None else [None] * len(emb)
        if len(flags) != len(emb) or len(srcs) != len(emb):
            raise InputError("one masked flag and one source per embedding, please")
        self._bind_model(conn, emb.shape[1])
        now = _now()
        conn.executemany(
            "INSERT INTO embeddings (person_id, model, dim, masked, vector, source, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(person_id, self.model, emb.shape[1], int(m), v.tobytes(), s, now)
             for v, m, s in zip(emb, flags, srcs)])
        return len(emb)

    def enroll(self, name: str, embeddings: np.ndarray, masked: Iterable[bool] | bool = False,
               metadata: Mapping[str, Any] | None = None,
               sources: Iterable[str | None] | None = None,
               audit: tuple[str, Mapping[str, Any]] | None = None,
               expect_version: int | None = None) -> Person:
        """Enrol a new person with one or more embeddings, atomically.

        ``audit``: ``(action, details)`` recorded in the audit log in the same transaction, so
        the enrolment and its record commit together or not at all. ``expect_version``: write
        only if the gallery is still at this :meth:`version` (see
        :func:`maskface.gallery.duplicates.store_unless_duplicate`).

        Raises:
            DuplicateNameError: ``name`` is already enrolled (use :meth:`add_embeddings`).
            GalleryChangedError: the gallery is no longer at ``expect_version``.
        """
        name = check_name(name)
        emb = self._vectors(embeddings)
        meta_json = json.dumps(dict(metadata or {}))
        try:
            with self._transaction(expect_version) as conn:
                pid = conn.insert(
                    "INSERT INTO people (name, metadata, created_at) VALUES (?, ?, ?)",
                    (name, meta_json, _now()))
                self._insert_embeddings(conn, pid, emb, masked, sources)
                if audit is not None:
                    self._record(conn, audit[0], pid, name, audit[1])
        except IntegrityError:
            raise DuplicateNameError(f"'{name}' is already enrolled; add photos to them "
                                     "instead (--add) or choose another name") from None
        return self.get(pid)

    def add_embeddings(self, person: int | str, embeddings: np.ndarray,
                       masked: Iterable[bool] | bool = False,
                       sources: Iterable[str | None] | None = None,
                       audit: tuple[str, Mapping[str, Any]] | None = None,
                       expect_version: int | None = None) -> Person:
        """Add embeddings (more photos) to an enrolled person, atomically (``audit`` and
        ``expect_version`` as in :meth:`enroll`)."""
        emb = self._vectors(embeddings)
        with self._transaction(expect_version) as conn:
            pid = self._resolve(person, conn)
            self._insert_embeddings(conn, pid, emb, masked, sources)
            if audit is not None:
                name = conn.execute("SELECT name FROM people WHERE id=?", (pid,)).fetchone()[0]
                self._record(conn, audit[0], pid, name, audit[1])
        return self.get(pid)

    # -- audit log ----------------------------------------------------------------------------
    def _record(self, conn: Transaction, action: str, person_id: int | None,
                person_name: str | None, details: Mapping[str, Any]) -> None:
        conn.execute("INSERT INTO audit (time, action, person_id, person_name, details) "
                     "VALUES (?, ?, ?, ?, ?)",
                     (_now(), action, person_id, person_name, json.dumps(dict(details))))

    def audit_events(self, person_id: int | None = None, limit: int = 100,
                     offset: int = 0) -> tuple[list[AuditEvent], int]:
        """Audit events, newest first, optionally of one person: ``(page, total matching)``."""
        where, args = ("WHERE person_id=?", [int(person_id)]) if person_id is not None else \
            ("", [])
        with self._read() as tx:
            total = tx.one(f"SELECT COUNT(*) FROM audit {where}", args)
            rows = tx.execute(
                "SELECT id, time, action, person_id, person_name, details FROM audit "
                f"{where} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
        return [AuditEvent(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows], \
            int(total)

    def _resolve(self, person: int | str, conn: Transaction | None = None) -> int:
        if conn is None:
            with self._read() as tx:
                return self._resolve(person, tx)
        if isinstance(person, (int, np.integer)) and not _ROW_ID_MIN <= person <= _ROW_ID_MAX:
            raise UnknownPersonError(f"no enrolled person '{person}'")  # would overflow
        if isinstance(person, (int, np.integer)):
            row = conn.execute("SELECT id FROM people WHERE id=?", (int(person),)).fetchone()
        else:
            row = conn.execute("SELECT id FROM people WHERE name=?",
                               (unicodedata.normalize("NFC", str(person)),)).fetchone()
            if row is None and str(person).isdigit() and int(person) <= _ROW_ID_MAX:
                row = conn.execute("SELECT id FROM people WHERE id=?", (int(person),)).fetchone()
        if row is None:
            raise UnknownPersonError(f"no enrolled person '{person}'")
        return int(row[0])

    _PERSON_SQL = (
        "SELECT p.id, p.name, p.metadata, p.created_at, COUNT(e.id), COALESCE(SUM(e.masked), 0),"
        " COALESCE(SUM(CASE WHEN substr(e.source, 1, 15) = 'synthetic-mask:' THEN 1 ELSE 0"
        " END), 0)"
        " FROM people p LEFT JOIN embeddings e ON e.person_id = p.id")

    @staticmethod
    def _person(row) -> Person:
        return Person(int(row[0]), row[1], json.loads(row[2]), row[3], int(row[4]), int(row[5]),
                      int(row[6]))

    def get(self, person: int | str) -> Person:
        """One person by id or name (raises :class:`UnknownPersonError`)."""
        with self._read() as tx:
            pid = self._resolve(person, tx)
            row = tx.execute(self._PERSON_SQL + " WHERE p.id=? GROUP BY p.id, p.name, "
                             "p.metadata, p.created_at", (pid,)).fetchone()
        return self._person(row)

    def people(self, limit: int | None = None, offset: int = 0,
               name_contains: str | None = None) -> list[Person]:
        """Everyone enrolled, by id; or a page of them (``limit``, ``offset``), or those whose
        name contains ``name_contains`` (in any case; on SQLite only ASCII letters fold)."""
        where, args = self._name_filter(name_contains)
        page = ""
        if limit is not None:
            page = " LIMIT ? OFFSET ?"
            args = (*args, int(limit), int(offset))
        with self._read() as tx:
            rows = tx.execute(self._PERSON_SQL + where + " GROUP BY p.id, p.name, p.metadata, "
                              "p.created_at ORDER BY p.id" + page, args).fetchall()
        return [self._person(r) for r in rows]

    def count_people(self, name_contains: str | None = None) -> int:
        """How many are enrolled (whose name contains ``name_contains``, any case)."""
        where, args = self._name_filter(name_contains)
        with self._read() as tx:
            return int(tx.one("SELECT COUNT(*) FROM people p" + where, args))

    @staticmethod
    def _name_filter(text: str | None) -> tuple[str, tuple]:
        if not text:
            return "", ()
        # the text is matched literally: % and _ are not wildcards here
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + "%"
        return " WHERE LOWER(p.name) LIKE ? ESCAPE '\\'", (pattern,)

    def __len__(self) -> int:
        return self.count_people()

    def count_embeddings(self, person: int | str | None = None) -> int:
        """Stored embeddings, of one person or in total."""
        with self._read() as tx:
            if person is None:
                return int(tx.one("SELECT COUNT(*) FROM embeddings"))
            pid = self._resolve(person, tx)
            return int(tx.one("SELECT COUNT(*) FROM embeddings WHERE person_id=?", (pid,)))

    def templates_not_realigned(self) -> int:
        """Synthetic masked templates embedded on the detector's landmarks, before masked faces
        were re-aligned (``maskface people remask`` makes them again)."""
        from maskface.recognize.templates import REALIGNED_TAG, SOURCE_PREFIX

        with self._read() as tx:
            return int(tx.one("SELECT COUNT(*) FROM embeddings WHERE source LIKE ? AND source "
                              "NOT LIKE ?", (f"{SOURCE_PREFIX}%",
                                             f"{SOURCE_PREFIX}%{REALIGNED_TAG}:%")))

    def rename(self, person: int | str, new_name: str) -> Person:
        """Give a person another (unique) name."""
        new_name = check_name(new_name)
        try:
            with self._transaction() as conn:
                pid = self._resolve(person, conn)
                conn.execute("UPDATE people SET name=? WHERE id=?", (new_name, pid))
        except IntegrityError:
            raise DuplicateNameError(f"'{new_name}' is already enrolled") from None
        return self.get(pid)

    def update_metadata(self, person: int | str, metadata: Mapping[str, Any]) -> Person:
        """Replace a person's metadata (a JSON object)."""
        with self._transaction() as conn:
            pid = self._resolve(person, conn)
            conn.execute("UPDATE people SET metadata=? WHERE id=?",
                         (json.dumps(dict(metadata)), pid))
        return self.get(pid)

    def delete(self, person: int | str) -> int:
        """Erase a person and every one of their embeddings; returns how many embeddings went.

        Biometric data must be erasable: the rows are deleted in one transaction (foreign-key
        cascade) and SQLite's WAL is checkpointed so the vectors do not linger in the journal.
        """
        with self._transaction() as conn:
            pid = self._resolve(person, conn)
            n = conn.execute("DELETE FROM embeddings WHERE person_id=?", (pid,)).rowcount
            conn.execute("DELETE FROM people WHERE id=?", (pid,))
        self.db.maintenance_after_delete()
        return int(n)

    def embeddings(self, person: int | str) -> tuple[np.ndarray, np.ndarray]:
        """A person's stored embeddings ``(K, D)`` and their masked flags ``(K,)``."""
        with self._read() as tx:
            pid = self._resolve(person, tx)
            rows = tx.execute(
                "SELECT vector, masked, dim FROM embeddings WHERE person_id=? ORDER BY id",
                (pid,)).fetchall()
        if not rows:
            return np.zeros((0, self.dim or 0), np.float32), np.zeros((0,), bool)
        vecs = np.stack([np.frombuffer(r[0], np.float32, count=r[2]) for r in rows])
        return vecs, np.array([bool(r[1]) for r in rows])

    def embedding_rows(self, person: int | str) -> tuple[np.ndarray, np.ndarray, list]:
        """A person's stored embeddings ``(K, D)``, masked flags ``(K,)`` and sources."""
        with self._read() as tx:
            pid = self._resolve(person, tx)
            rows = tx.execute(
                "SELECT vector, masked, dim, source FROM embeddings WHERE person_id=? "
                "ORDER BY id", (pid,)).fetchall()
        if not rows:
            return np.zeros((0, self.dim or 0), np.float32), np.zeros((0,), bool), []
        vecs = np.stack([np.frombuffer(r[0], np.float32, count=r[2]) for r in rows])
        return vecs, np.array([bool(r[1]) for r in rows]), [r[3] for r in rows]

    def replace_embeddings(self, person: int | str, source_prefix: str,
                           embeddings: np.ndarray | None = None,
                           masked: Iterable[bool] | bool = False,
                           sources: Iterable[str | None] | None = None,
                           which: Callable[[str], bool] | None = None) -> int:
        """Replace a person's embeddings whose source starts with ``source_prefix`` (e.g. the
        synthetic masked templates, made again) and, given ``which``, for which it is true, by
        ``embeddings`` (none: just delete them), in one transaction: a search never sees the
        person half-replaced and a failed insert keeps the old ones. Returns how many were
        removed."""
        emb = self._vectors(embeddings) if embeddings is not None and len(embeddings) else None
        with self._transaction() as conn:
            pid = self._resolve(person, conn)
            rows = conn.execute("SELECT id, source FROM embeddings WHERE person_id=? AND "
                                "substr(source, 1, ?) = ?",
                                (pid, len(source_prefix), source_prefix)).fetchall()
            gone = [(i,) for i, src in rows if which is None or which(src)]
            if gone:
                conn.executemany("DELETE FROM embeddings WHERE id=?", gone)
            removed = len(gone)
            if emb is not None:
                self._insert_embeddings(conn, pid, emb, masked, sources)
            return removed

    # -- search -------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Rebuild the search index if this or another process changed the gallery."""
        with self._read() as tx:
            key = int(tx.one("SELECT version FROM gallery_version WHERE id = 1"))
        if key == self._cache_key:
            return
        with self._read() as tx:  # one snapshot of the version and both tables
            key = int(tx.one("SELECT version FROM gallery_version WHERE id = 1"))
            names = dict(tx.execute("SELECT id, name FROM people").fetchall())
            rows = tx.execute(
                "SELECT person_id, vector, masked FROM embeddings WHERE model=? ORDER BY id",
                (self.model or "",)).fetchall()
        dim = self.dim or 0
        if rows:
            blob = b"".join(r[1] for r in rows)
            matrix = np.frombuffer(blob, np.float32).reshape(len(rows), -1)
            # One label per (person, masked template or not): a search yields each person's
            # best unmasked and best masked template, so a probe can be matched by condition.
            labels = np.fromiter((2 * r[0] + bool(r[2]) for r in rows), np.int64, len(rows))
            order = np.argsort(labels, kind="stable")  # grouped by label, for reduceat
            matrix, labels = np.ascontiguousarray(matrix[order]), labels[order]
        else:
            matrix, labels = np.zeros((0, dim), np.float32), np.zeros((0,), np.int64)
        self.index.build(matrix, labels)
        self._matrix = matrix  # the same array the exact index holds (no copy)
        self._label_ids, self._label_starts = np.unique(labels, return_index=True)
        self._names = names
        self._cache_key = key

    def _person_scores(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact per-person scores: ``(person ids (P,), best unmasked template (Q, P), best
        masked template (Q, P))``, ``-inf`` where a person has none of that kind.

        Over a gallery large enough for the approximate index, only the people it proposes
        (the best 32 templates of each query) are scored, exactly, with all their templates."""
        with self._lock:
            self._refresh()
            matrix, ids, starts = self._matrix, self._label_ids, self._label_starts
            if getattr(self.index, "kind", "exact") != "exact" and len(ids):
                _, labels = self.index.search(q, 32)
                keep = np.isin(ids // 2, np.unique(labels[labels >= 0] // 2))
                ends = np.append(starts[1:], len(matrix))
                rows = np.concatenate([np.arange(a, b) for a, b in
                                       zip(starts[keep], ends[keep])] or [np.zeros(0, int)])
                matrix, ids = matrix[rows], ids[keep]
                starts = np.concatenate([[0], np.cumsum(ends[keep] - starts[keep])[:-1]])
        pids = np.unique(ids // 2)
        su = np.full((len(q), len(pids)), -np.inf, np.float32)
        sm = su.copy()
        if len(ids):
            per_label = np.maximum.reduceat(q @ matrix.T, starts, axis=1)
            col = np.searchsorted(pids, ids // 2)
            is_m = (ids % 2).astype(bool)
            su[:, col[~is_m]] = per_label[:, ~is_m]
            sm[:, col[is_m]] = per_label[:, is_m]
        return pids, su, sm

    def _search_templates(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``2k`` (person, template masked) labels per query (``label = 2 id + masked``)."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if self.dim and q.shape[1] != self.dim:
            raise InputError(f"query embeddings are {q.shape[1]}-d, the gallery holds "
                             f"{self.dim}-d ones")
        with self._lock:
            self._refresh()
            return self.index.search(q, 2 * k)

    def search(self, queries: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Raw 1:N search: best ``k`` people per query, ``(scores (Q, k), person_ids (Q, k))``
        (a person's score is their best embedding, masked template or not)."""
        scores, labels = self._search_templates(queries, k)
        out_s = np.full((len(scores), k), -np.inf, np.float32)
        out_i = np.full((len(scores), k), -1, np.int64)
        for r, (srow, lrow) in enumerate(zip(scores, labels)):
            seen: list[int] = []
            for s, lab in zip(srow, lrow):
                if lab >= 0 and lab // 2 not in seen and len(seen) < k:
                    out_s[r, len(seen)], out_i[r, len(seen)] = s, lab // 2
                    seen.append(int(lab // 2))
        return out_s, out_i

    def identify(self, queries: np.ndarray, threshold: float, k: int = 5,
                 masked: Sequence[bool] | None = None,
                 thresholds: Mapping[str, float] | None = None,
                 template_weight: float | None = None) -> list[Match]:
        """Open-set 1:N identification of each query embedding.

        A query is matched to the best-scoring person when that score is at least the
        threshold; otherwise the match is unknown (``person_id`` ``None``), while the best
        candidates are still reported.

        With ``masked`` (the probes' mask states), an unmasked probe is scored against a
        person's unmasked templates (their masked ones only when they have no other), a masked
        probe against their masked templates (synthetic copies and masked photos), mixed with
        the unmasked ones as ``w * masked + (1 - w) * unmasked`` when ``template_weight`` is
        ``w``. With ``None`` (the shipped rule) the better of the two is the one further above
        its own condition's threshold: a masked probe's score against a masked template is
        reported less :func:`~maskface.gallery.thresholds.template_offset` (on the
        masked-unmasked scale), so a person is accepted when either kind passes its threshold.
        ``thresholds`` (per condition, see :mod:`maskface.gallery.thresholds`; the offset comes
        from them, else from the gallery's own) then replaces ``threshold`` for the condition
        of the best candidate.
        """
        from maskface.gallery.thresholds import condition, template_offset, thresholds_for

        flags = None if masked is None else np.asarray(masked, bool).reshape(-1)
        if flags is None:
            return self._identify_any(queries, threshold, k)
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if self.dim and q.shape[1] != self.dim:
            raise InputError(f"query embeddings are {q.shape[1]}-d, the gallery holds "
                             f"{self.dim}-d ones")
        if len(flags) != len(q):
            raise InputError(f"{len(flags)} mask flags for {len(q)} queries")
        # Exact per-person scores (the template mix needs both sides of every person).
        pids, su, sm = self._person_scores(q)
        has_u, has_m = np.isfinite(su), np.isfinite(sm)
        fm = flags[:, None]
        offset = template_offset(thresholds or thresholds_for(self)) \
            if template_weight is None else 0.0
        # a masked probe's score against a masked template, on the masked-unmasked scale
        sm = np.where(fm, sm - offset, sm)
        if template_weight is None:
            mix, mix_t = np.maximum(su, sm), sm > su
        else:
            mix, mix_t = template_weight * sm + (1 - template_weight) * su, np.ones_like(has_m)
        # unmasked probe: unmasked templates (masked ones only for a person with no other);
        # masked probe: the mix when the person has both kinds, else the kind they have
        score = np.where(fm & has_u & has_m, mix, np.where(has_u, su, sm))
        tmpl = np.where(fm & has_u & has_m, mix_t, ~has_u)
        matches = []
        for r in range(len(q)):
            order = np.argsort(-score[r], kind="stable")[:k] if len(pids) else []
            cands = [(int(pids[j]), self._names.get(int(pids[j]), "?"), float(score[r, j]))
                     for j in order]
            cond = condition(bool(flags[r]), bool(tmpl[r, order[0]])) if cands else \
                condition(bool(flags[r]), False)
            t = threshold if thresholds is None else \
                float(thresholds[cond]) - (offset if cond == "masked-masked" else 0.0)
            if cands and cands[0][2] >= t:
                pid, name, best = cands[0]
                matches.append(Match(pid, name, best, t, cands, cond))
            else:
                top = cands[0][2] if cands else -1.0  # empty gallery: the lowest cosine
                matches.append(Match(None, None, top, t, cands, cond))
        return matches

    def _identify_any(self, queries: np.ndarray, threshold: float, k: int) -> list[Match]:
        """Identification without mask states: each person's best embedding of any kind."""
        scores, ids = self.search(queries, k)
        matches = []
        for srow, irow in zip(scores, ids):
            cands = [(int(i), self._names.get(int(i), "?"), float(s))
                     for s, i in zip(srow, irow) if i >= 0]
            if cands and cands[0][2] >= threshold:
                pid, name, score = cands[0]
                matches.append(Match(pid, name, score, threshold, cands))
            else:
                best = cands[0][2] if cands else -1.0  # empty gallery: the lowest cosine
                matches.append(Match(None, None, best, threshold, cands))
        return matches

    def verify(self, query: np.ndarray, person: int | str, threshold: float) -> tuple[bool, float]:
        """1:1 verification: is ``query`` this person? Returns ``(accepted, best score)``."""
        vecs, _ = self.embeddings(person)
        if len(vecs) == 0:
            raise GalleryError(f"'{person}' has no stored embeddings")
        q = self._vectors(query)[0]
        score = float((vecs @ q).max())
        return score >= threshold, score

    def integrity_check(self) -> bool:
        """The store's own consistency check (SQLite's ``integrity_check``; PostgreSQL checks
        its pages itself and reports True when reachable)."""
        check = getattr(self.db, "integrity_check", None)
        if check is not None:
            return bool(check())
        with self._read() as tx:
            return tx.one("SELECT 1") == 1

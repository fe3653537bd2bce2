"""The access event log: one row per access check, queryable by time, person, decision and
door."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maskface.storage import Database, open_database
from maskface.storage.schema import SNAPSHOT_NAME

log = logging.getLogger(__name__)

DECISIONS = ("granted", "denied")
#: the service applies the retention settings at start and then this often (seconds)
RETENTION_INTERVAL_S = 3600.0
_DAY_S = 86400.0



@dataclass
class Event:
    """One access check as recorded."""

    id: int
    time: float
    decision: str
    reasons: list[str] = field(default_factory=list)
    person_id: int | None = None
    person_name: str | None = None
    temperature: float | None = None
    mask: str | None = None
    score: float | None = None
    faces: int = 0
    #: server-generated snapshot file name (never a client-supplied path), if stored
    snapshot: str | None = None
    #: the judged face's live score (mean live probability), if checked
    liveness: float | None = None
    #: the door that made the check: its kiosk key's label, else the key's id
    door: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "time": self.time,
                "time_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time)),
                "decision": self.decision, "reasons": self.reasons,
                "person_id": self.person_id, "person_name": self.person_name,
                "temperature": self.temperature, "mask": self.mask,
                "score": None if self.score is None else round(self.score, 4),
                "faces": self.faces, "snapshot": self.snapshot is not None,
                "liveness": None if self.liveness is None else round(self.liveness, 4),
                "door": self.door}


_COLUMNS = ("id, time, decision, reasons, person_id, person_name, temperature, mask, score, "
            "faces, snapshot, liveness, door")


def _event(row) -> Event:
    ev = Event(*row)
    ev.reasons = json.loads(ev.reasons)
    return ev


class EventLog:
    """Append-only log of access events in the service database."""

    def __init__(self, db: Database | str | Path):
        self.db = open_database(db)  # the schema is the shared migrations' (storage.schema)

    def record(self, decision: str, reasons: list[str], *, person_id: int | None = None,
               person_name: str | None = None, temperature: float | None = None,
               mask: str | None = None, score: float | None = None, faces: int = 0,
               snapshot: str | None = None, when: float | None = None,
               liveness: float | None = None, door: str | None = None) -> Event:
        """Append an event and commit it before returning."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
        ev = Event(0, time.time() if when is None else when, decision, list(reasons), person_id,
                   person_name, temperature, mask, score, faces, snapshot, liveness, door)
        with self.db.transaction() as tx:
            ev.id = tx.insert(
                "INSERT INTO events (time, decision, reasons, person_id, person_name, "
                "temperature, mask, score, faces, snapshot, liveness, door) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (ev.time, ev.decision, json.dumps(ev.reasons), ev.person_id, ev.person_name,
                 ev.temperature, ev.mask, ev.score, ev.faces, ev.snapshot, ev.liveness,
                 ev.door))
        return ev

    def prune(self, events_before: float | None, snapshots_before: float | None,
              snapshot_dir: Path) -> tuple[int, int]:
        """Delete events older than ``events_before`` and the snapshot photos of events older
        than ``snapshots_before`` (epoch seconds; ``None``: keep); returns (events deleted,
        snapshots deleted). Rows go first, in one transaction, then their files: a crash in
        between leaves an unreferenced file, never an event pointing at a deleted one."""
        files: list[str] = []
        with self.db.transaction() as tx:
            for before in (events_before, snapshots_before):
                if before is not None:
                    files += [r[0] for r in tx.execute(
                        "SELECT snapshot FROM events WHERE time < ? AND snapshot IS NOT NULL",
                        (before,)).fetchall()]
            if snapshots_before is not None:
                tx.execute("UPDATE events SET snapshot = NULL WHERE time < ?",
                           (snapshots_before,))
            n_events = 0
            if events_before is not None:
                n_events = int(tx.one("SELECT COUNT(*) FROM events WHERE time < ?",
                                      (events_before,)))
                tx.execute("DELETE FROM events WHERE time < ?", (events_before,))
        return n_events, _unlink(snapshot_dir, files)

    def forget_photos(self, person_id: int, snapshot_dir: Path) -> int:
        """Delete the snapshot photos of a person's access events (the events stay, as the
        access log, without the photo); returns how many files were deleted."""
        with self.db.transaction() as tx:
            files = [r[0] for r in tx.execute(
                "SELECT snapshot FROM events WHERE person_id = ? AND snapshot IS NOT NULL",
                (int(person_id),)).fetchall()]
            tx.execute("UPDATE events SET snapshot = NULL WHERE person_id = ?",
                       (int(person_id),))
        return _unlink(snapshot_dir, files)

    def get(self, event_id: int) -> Event | None:
        with self.db.transaction(write=False) as tx:
            row = tx.execute(f"SELECT {_COLUMNS} FROM events WHERE id = ?",
                               (event_id,)).fetchone()
        return _event(row) if row else None

    def query(self, *, since: float | None = None, until: float | None = None,
              person_id: int | None = None, decision: str | None = None,
              door: str | None = None, limit: int = 100,
              offset: int = 0) -> tuple[list[Event], int]:
        """Events matching every given filter, newest first; returns (page, total matching)."""
        where, args = [], []
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        if until is not None:
            where.append("time < ?")
            args.append(until)
        if person_id is not None:
            where.append("person_id = ?")
            args.append(person_id)
        if decision is not None:
            where.append("decision = ?")
            args.append(decision)
        if door is not None:
            where.append("door = ?")
            args.append(door)
        cond = f"WHERE {' AND '.join(where)}" if where else ""
        with self.db.transaction(write=False) as tx:
            total = tx.one(f"SELECT COUNT(*) FROM events {cond}", args)
            rows = tx.execute(f"SELECT {_COLUMNS} FROM events {cond} "
                                "ORDER BY time DESC, id DESC LIMIT ? OFFSET ?",
                                [*args, limit, offset]).fetchall()
        return [_event(r) for r in rows], int(total)


def snapshot_file(folder: Path, name: str | None) -> Path | None:
    """The file of an event's snapshot ``name`` in ``folder``, or ``None`` when the name is not
    one the server makes (an absolute path or ``../x`` would reach outside the folder)."""
    if not name or not SNAPSHOT_NAME.fullmatch(name):
        return None
    return folder / name


def save_snapshot(image, folder: Path) -> str | None:
    """Keep the frame an access decision rests on as ``folder/<random>.jpg``; returns the file
    name for the event (generated here: nothing a client sent reaches the file system), or
    ``None`` if it could not be written (logged; the event is recorded without it)."""
    import uuid

    import cv2

    name = f"{uuid.uuid4().hex}.jpg"
    folder.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(folder / name), image):
        log.warning("could not write snapshot to %s", folder)
        return None
    return name


#: columns of the access log as CSV (``GET /v1/events/export.csv``, ``maskface events --csv``)
CSV_FIELDS = ("id", "time_iso", "door", "decision", "reasons", "person_id", "person_name",
              "mask", "temperature", "score", "liveness", "faces", "snapshot")


def _csv_value(value: Any) -> Any:
    """A CSV cell: lists joined with "; ", and text a spreadsheet would run as a formula (it
    starts with = + - @ or a tab/CR; a person's name is typed by whoever enrols them) prefixed
    with an apostrophe (OWASP's CSV-injection advice)."""
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def events_csv(log: EventLog, *, since: float | None = None, until: float | None = None,
               person_id: int | None = None, decision: str | None = None,
               door: str | None = None, page: int = 1000) -> Iterator[str]:
    """Every event matching the filters as CSV text (header first, newest first), read a page at
    a time. Events recorded while it runs are left out (``until`` is capped at its start), so
    paging never repeats or skips a row."""
    until = min(until, time.time()) if until is not None else time.time()
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    offset = 0
    while True:
        events, _ = log.query(since=since, until=until, person_id=person_id, decision=decision,
                              door=door, limit=page, offset=offset)
        for e in events:
            d = e.to_dict()
            writer.writerow([_csv_value(d[k]) for k in CSV_FIELDS])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
        if len(events) < page:
            return
        offset += page


def _unlink(folder: Path, names: list[str]) -> int:
    """Delete these snapshot files (server-made names); returns how many were there."""
    removed = 0
    for name in set(names):
        path = snapshot_file(folder, name)
        if path is None:
            log.warning("snapshot name %r is not one the server makes; no file deleted", name)
            continue
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def apply_retention(events: EventLog, retention, snapshot_dir: Path,
                    now: float | None = None) -> tuple[int, int]:
    """Prune ``events`` by a config's ``[retention]`` (days; 0 keeps for ever); returns
    (events deleted, snapshot photos deleted)."""
    now = time.time() if now is None else now

    def before(days: float) -> float | None:
        return now - days * _DAY_S if days > 0 else None

    return events.prune(before(retention.events_days), before(retention.snapshots_days),
                        snapshot_dir)

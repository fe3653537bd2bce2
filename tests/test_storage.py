"""The storage layer on both back ends (SQLite and a real PostgreSQL server started by the
suite): migrations, transactions, replicas agreeing, export/import round trips."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from typer.testing import CliRunner

from maskface.errors import InputError, MaskfaceError
from maskface.gallery import Gallery
from maskface.storage import IntegrityError, StoreError, open_database
from maskface.storage.schema import SCHEMA_VERSION, TABLES
from maskface.storage.transfer import export_store, import_store
from pg_util import postgres  # noqa: F401  (fixture)

DIM = 32


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "store.db"
    return request.getfixturevalue("postgres").new_database()


def unit(rng, n=1):
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_fresh_store_is_migrated_and_transactions_roll_back(location):
    with open_database(location) as db:
        assert db.describe()["schema_version"] == SCHEMA_VERSION
        assert db.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)
        with db.transaction(write=False) as tx:
            assert set(TABLES) <= db.tables(tx)
        with pytest.raises(RuntimeError), db.transaction() as tx:
            tx.insert("INSERT INTO people (name, metadata, created_at) VALUES (?, '{}', '')",
                      ("A",))
            raise RuntimeError("boom")
        with db.transaction() as tx:
            assert tx.one("SELECT COUNT(*) FROM people") == 0
            tx.insert("INSERT INTO people (name, metadata, created_at) VALUES (?, '{}', '')",
                      ("A",))
        with pytest.raises(IntegrityError), db.transaction() as tx:
            tx.insert("INSERT INTO people (name, metadata, created_at) VALUES (?, '{}', '')",
                      ("A",))


def test_old_sqlite_gallery_is_migrated(tmp_path):
    """A file made before the storage layer (gallery schema 1, events without liveness)."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '1');
            CREATE TABLE people (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
                metadata TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
            CREATE TABLE embeddings (id INTEGER PRIMARY KEY AUTOINCREMENT, person_id INTEGER
                NOT NULL REFERENCES people(id) ON DELETE CASCADE, model TEXT NOT NULL,
                dim INTEGER NOT NULL, masked INTEGER NOT NULL DEFAULT 0, vector BLOB NOT NULL,
                source TEXT, created_at TEXT NOT NULL);
            CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL,
                person_id INTEGER, person_name TEXT, decision TEXT NOT NULL, reasons TEXT NOT NULL,
                temperature REAL, mask TEXT, score REAL, faces INTEGER NOT NULL, snapshot TEXT);
            INSERT INTO people (name, created_at) VALUES ('Old', 'then');
            INSERT INTO events (time, decision, reasons, faces) VALUES (1.5, 'denied', '[]', 0);
        """)
    from maskface.service.events import EventLog

    with open_database(path) as db:
        assert db.describe()["schema_version"] == SCHEMA_VERSION
        ev = EventLog(db)
        assert ev.get(1).liveness is None and ev.get(1).decision == "denied"
    with Gallery(path) as g:
        assert [p.name for p in g.people()] == ["Old"]


def test_replicas_see_each_others_enrolments_and_deletions(location):
    """Two processes' galleries on one store (as two service replicas): an enrolment on one is
    matched by the other at its next search; a deletion is never matched again."""
    rng = np.random.default_rng(0)
    a = Gallery(location, model="m", dim=DIM)
    b = Gallery(location, model="m", dim=DIM)
    try:
        alice = unit(rng, 3)
        assert not b.identify(alice[0], threshold=0.5)[0].known  # b's index: empty, cached
        pid = a.enroll("Alice", alice).id
        m = b.identify(alice[1], threshold=0.5)[0]
        assert m.known and m.person_id == pid and m.name == "Alice"
        a.delete(pid)
        m = b.identify(alice[1], threshold=0.5)[0]
        assert not m.known and all(c[0] != pid for c in m.candidates)
        b.enroll("Bob", unit(rng, 2))
        assert [p.name for p in a.people()] == ["Bob"]
    finally:
        a.close()
        b.close()


def _fill(location, rng):
    """A store with everything a building has: people, embeddings, keys, policy, events."""
    from maskface.service.auth import KeyStore
    from maskface.service.config import Policy
    from maskface.service.events import EventLog
    from maskface.service.settings import SettingsStore

    with open_database(location) as db:
        with Gallery(db, model="m", dim=DIM) as g:
            g.enroll("Alice", unit(rng, 3), masked=[False, True, False],
                     metadata={"groups": ["staff"]}, sources=["a.jpg", None, "c.jpg"])
            bob = g.enroll("Bob", unit(rng, 2)).id
            g.enroll("Carol", unit(rng, 1), audit=("duplicate_allowed", {"of": 1, "score": 0.9}))
            g.delete(bob)  # ids with a gap
        keys = KeyStore(db)
        admin, rec = keys.create("admin", "lead")
        keys.revoke(keys.create("kiosk", "door 1")[1].key_id)
        SettingsStore(db).set_policy(Policy(mask_required=False, temperature_threshold=37.9))
        log = EventLog(db)
        log.record("granted", ["ok"], person_id=1, person_name="Alice", temperature=36.61,
                   mask="mask", score=0.71234567, faces=1, liveness=0.93)
        log.record("denied", ["unknown_person"], faces=2, when=1700000000.123456)
    return admin


def _dump(location) -> dict[str, list]:
    with open_database(location) as db, db.transaction(write=False) as tx:
        out = {}
        for t in TABLES:
            if t in ("gallery_version",):
                continue
            rows = tx.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            out[t] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                      for r in rows]
        return out


def test_two_replicas_enrolling_one_face_at_once_store_it_once(location):
    """The duplicate check and the write are one step: replica B checks the face (no match),
    replica A enrols it before B writes, and B's write is refused by the version check; B then
    checks again, finds A's person and stores nothing. Without the version check both would
    hold the face under two names."""
    from maskface.gallery import GalleryChangedError, store_unless_duplicate

    rng = np.random.default_rng(3)
    face = unit(rng, 2)
    a = Gallery(location, model="m", dim=DIM)
    b = Gallery(location, model="m", dim=DIM)
    try:
        a.enroll("Someone", unit(rng, 1))  # the store is not empty: find_duplicate searches
        seen = []

        def store(dup, version):
            seen.append(dup)
            if dup is not None:
                return None  # refused, as the API's 409 does
            if len(seen) == 1:  # between B's check and B's write, A enrols the same face
                a.enroll("Alice", face)
            return b.enroll("Alice2", face, expect_version=version)

        assert store_unless_duplicate(b, face, [False, False], 0.5, store) is None
        assert seen[0] is None and seen[1].name == "Alice"
        assert sorted(p.name for p in b.people()) == ["Alice", "Someone"]
        # a stale version is refused with nothing written; the current one is accepted
        v = b.version()
        a.enroll("Carol", unit(rng, 1))
        with pytest.raises(GalleryChangedError):
            b.add_embeddings("Alice", unit(rng, 1), expect_version=v)
        assert b.count_embeddings("Alice") == 2
        b.add_embeddings("Alice", unit(rng, 1), expect_version=b.version())
        assert a.count_embeddings("Alice") == 3
    finally:
        a.close()
        b.close()


def test_export_sqlite_import_postgresql_round_trips_exactly(tmp_path, postgres):  # noqa: F811
    rng = np.random.default_rng(1)
    src = tmp_path / "building.db"
    admin = _fill(src, rng)
    export_store(open_database(src), tmp_path / "x.jsonl")
    pg = postgres.new_database()
    counts = import_store(open_database(pg), tmp_path / "x.jsonl")
    assert counts["people"] == 2 and counts["embeddings"] == 4 and counts["events"] == 2
    assert counts["audit"] == 1
    before, after = _dump(src), _dump(pg)
    assert before == after  # every table, every column, vectors byte for byte
    # ... and back into a new SQLite file
    export_store(open_database(pg), tmp_path / "y.jsonl")
    back = tmp_path / "back.db"
    import_store(open_database(back), tmp_path / "y.jsonl")
    assert _dump(back) == before
    # The moved building works: keys verify, people match, new ids continue after the old.
    from maskface.service.auth import KeyStore

    with open_database(pg) as db:
        assert KeyStore(db).verify(admin).role == "admin"
        with Gallery(db, model="m", dim=DIM) as g:
            vecs, masked = g.embeddings("Alice")
            assert masked.tolist() == [False, True, False]
            assert g.identify(vecs[0], threshold=0.9)[0].name == "Alice"
            assert g.enroll("Dan", unit(rng, 1)).id == 4


def test_import_refuses_a_busy_store_and_a_truncated_file(tmp_path, location):
    rng = np.random.default_rng(2)
    src = tmp_path / "src.db"
    _fill(src, rng)
    export_store(open_database(src), tmp_path / "x.jsonl")
    lines = (tmp_path / "x.jsonl").read_text().splitlines()
    (tmp_path / "cut.jsonl").write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(InputError, match="truncated"):
        import_store(open_database(location), tmp_path / "cut.jsonl")
    assert all(not rows for t, rows in _dump(location).items() if t != "meta")
    import_store(open_database(location), tmp_path / "x.jsonl")
    with pytest.raises(InputError, match="already holds"):
        import_store(open_database(location), tmp_path / "x.jsonl")
    with pytest.raises(InputError, match="not a maskface store export"):
        import_store(open_database(location), src)


def test_db_cli_migrate_export_import(tmp_path, postgres):  # noqa: F811
    from maskface.cli import load_commands

    app = load_commands()
    run = CliRunner().invoke
    src = tmp_path / "a.db"
    r = run(app, ["db", "migrate", "--db", str(src)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["schema_now"] == SCHEMA_VERSION
    _fill(src, np.random.default_rng(3))
    assert run(app, ["db", "export", str(tmp_path / "e.jsonl"), "--db", str(src)]).exit_code == 0
    pg = postgres.new_database()
    r = run(app, ["db", "import", str(tmp_path / "e.jsonl"), "--db", pg])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["imported"]["people"] == 2
    r = run(app, ["db", "import", str(tmp_path / "e.jsonl"), "--db", pg])
    assert r.exit_code == 1 and "already holds" in r.output
    # an import that cannot happen leaves no empty store behind
    for missing in (tmp_path / "none.jsonl", tmp_path):
        r = run(app, ["db", "import", str(missing), "--db", str(tmp_path / "new.db")])
        assert r.exit_code == 1 and ("no such export file" in r.output
                                     or "is a folder" in r.output), r.output
    assert not (tmp_path / "new.db").exists()
    r = run(app, ["db", "migrate", "--db", "postgresql://nobody@127.0.0.1:1/none"])
    assert r.exit_code == 1 and "cannot connect" in r.output


def test_reading_commands_refuse_a_store_that_is_not_there(tmp_path):
    """``db prune``/``db export``/``keys list``/``keys revoke`` at a mistyped path made an empty
    store there and reported on it (0 deleted, 0 rows) as if it were the real one."""
    from maskface.cli import load_commands

    app, missing = load_commands(), tmp_path / "typo.db"
    for args in (["db", "prune"], ["db", "export", str(tmp_path / "e.jsonl")],
                 ["keys", "list"], ["keys", "revoke", "abcd1234"]):
        r = CliRunner().invoke(app, [*args, "--db", str(missing)])
        assert r.exit_code == 1, (args, r.output)
        assert r.stderr.splitlines() == [f"error: {missing}: no store yet (check --db; "
                                         "'maskface db migrate' makes an empty one)"], args
        assert not missing.exists() and not (tmp_path / "e.jsonl").exists()
    assert CliRunner().invoke(app, ["db", "migrate", "--db", str(missing)]).exit_code == 0
    r = CliRunner().invoke(app, ["keys", "list", "--db", str(missing)])
    assert r.exit_code == 0 and "no API keys yet" in r.stderr


def test_foreign_store_is_refused(location):
    if isinstance(location, str):
        import psycopg

        with psycopg.connect(location, autocommit=True) as c:
            c.execute("CREATE TABLE accounts (id INTEGER)")
    else:
        with sqlite3.connect(location) as raw:
            raw.execute("CREATE TABLE accounts (id INTEGER)")
    with pytest.raises(StoreError, match="not a maskface gallery"):
        open_database(location)


def test_cli_enrol_and_people_on_postgresql(tmp_path, postgres, astronaut_path):  # noqa: F811
    """The gallery commands take a postgresql:// URL for --db (and $MASKFACE_DB)."""
    from maskface.cli import load_commands

    app = load_commands()
    url = postgres.new_database()
    r = CliRunner().invoke(app, ["enroll", "Astro", str(astronaut_path), "--db", url])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["people", "list"], env={"MASKFACE_DB": url})
    assert r.exit_code == 0 and "Astro" in r.output, r.output


def test_templates_not_realigned_counts_older_templates_on_both_back_ends(location):
    rng = np.random.default_rng(1)
    with Gallery(location, model="m", dim=DIM) as g:
        g.enroll("Ann", unit(rng, 4), masked=[False, True, True, True],
                 sources=["a.jpg", "synthetic-mask:cloth/realigned:a.jpg",
                          "synthetic-mask:kn95:a.jpg", "synthetic-mask:surgical:a.jpg"])
        assert g.templates_not_realigned() == 2


def test_people_page_and_name_search_on_both_back_ends(location):
    """A site with thousands of people lists them a page at a time and finds one by name; the
    search text is literal (% and _ are not wildcards) and any case."""
    rng = np.random.default_rng(9)
    names = ["Ann Lee", "ANNA Bell", "Bob", "50%_off", "Joann", "Zed"]
    with Gallery(location, model="m", dim=DIM) as g:
        ids = [g.enroll(n, unit(rng)).id for n in names]
        assert [p.id for p in g.people()] == ids and g.count_people() == 6
        assert [p.name for p in g.people(limit=2, offset=2)] == ["Bob", "50%_off"]
        assert [p.name for p in g.people(name_contains="ann")] == ["Ann Lee", "ANNA Bell",
                                                                    "Joann"]
        assert g.count_people("ANN") == 3
        assert [p.name for p in g.people(name_contains="%_")] == ["50%_off"]
        assert g.people(name_contains="_") == g.people(name_contains="%_")
        assert g.people(name_contains="nobody") == [] and g.count_people("x%") == 0
        assert [p.name for p in g.people(limit=1, offset=1, name_contains="an")] == ["ANNA Bell"]
    from maskface.cli import load_commands

    res = CliRunner().invoke(load_commands(), ["people", "list", "--db", str(location),
                                               "--search", "ANN"])
    assert res.exit_code == 0, res.output
    assert [line.split()[1] for line in res.stdout.splitlines()] == ["Ann", "ANNA", "Joann"]


def test_a_url_of_another_database_is_refused_not_made_an_sqlite_file(tmp_path, monkeypatch):
    """`--db mysql://host/db` made an SQLite file `mysql:/host/db` in the working folder."""
    from maskface.cli import load_commands
    from maskface.locations import url_scheme

    assert [url_scheme(s) for s in ("mysql://h/db", "sqlite:/x.db", "C:/g.db", "g.db")] == [
        "mysql", "sqlite", None, None]
    monkeypatch.chdir(tmp_path)
    for url in ("mysql://h/db", "sqlite:///people.db"):
        with pytest.raises(StoreError, match="give an SQLite file path or a postgresql:// URL"):
            open_database(url)
        with pytest.raises(MaskfaceError, match="not a store maskface can use"):
            Gallery(url)
    monkeypatch.setenv("MASKFACE_DB", "mysql://h/db")
    for args in (["db", "migrate"], ["people", "list"], ["db", "migrate", "--db", "mysql://h/db"]):
        res = CliRunner().invoke(load_commands(), args)
        assert res.exit_code == 1 and res.stderr.startswith("error: mysql://h/db: not a store")
    assert list(tmp_path.iterdir()) == []


def test_a_postgresql_store_that_cannot_be_reached_says_why_in_one_line(
        postgres, monkeypatch, caplog):  # noqa: F811
    """The pool logged a warning per attempt, then said only "pool initialization incomplete
    after 15 sec"; the server's own reason is what a user can act on."""
    import maskface.storage.postgres as pg

    monkeypatch.setattr(pg, "CONNECT_WAIT_S", 0.0)
    missing = postgres.dsn.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(StoreError) as info:
        open_database(missing)
    msg = str(info.value)
    assert "\n" not in msg and 'database "no_such_db" does not exist' in msg, msg
    assert not [r for r in caplog.records if r.name.startswith("psycopg")]
    with open_database(postgres.new_database()) as db:  # a reachable one still opens
        assert db.kind == "postgresql"


def test_export_and_import_refuse_what_would_destroy_or_escape(tmp_path):
    """`db export g.db --db g.db` replaced the store with its own export; an export edited to
    give an event the snapshot '/etc/x' had that file deleted by `db prune` (and served by
    the snapshot route); a damaged header or a store holding only audit records were
    tracebacks."""
    from maskface.service.events import EventLog

    rng = np.random.default_rng(4)
    src = tmp_path / "src.db"
    _fill(src, rng)
    before = _dump(src)
    with pytest.raises(InputError, match="is the store being exported"):
        export_store(open_database(src), src)
    with pytest.raises(InputError, match="is the store being exported"):
        export_store(open_database(src), tmp_path / "src.db-wal")
    assert _dump(src) == before
    export_store(open_database(src), tmp_path / "x.jsonl")
    header, *rows = (tmp_path / "x.jsonl").read_text().splitlines()

    victim = tmp_path / "victim.txt"
    victim.write_text("not the service's")
    for snap in (str(victim), "../victim.txt"):
        edited = [json.loads(r) for r in rows]
        next(r for r in edited if r["t"] == "events")["r"]["snapshot"] = snap
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n".join([header, *map(json.dumps, edited)]) + "\n")
        target = tmp_path / f"t{len(snap)}.db"
        with pytest.raises(InputError, match="not a name the service makes"):
            import_store(open_database(target), bad)
        assert all(not r for t, r in _dump(target).items() if t != "meta")
        # and were one there already (written by hand), it is neither deleted nor served
        log = EventLog(open_database(target))
        log.record("denied", ["x"], snapshot=snap, when=1.0)
        assert log.prune(None, 2.0, tmp_path / "snapshots") == (0, 0)
        assert victim.read_text() == "not the service's"

    for damaged in ({"schema_version": "five"}, {"rows": [1, 2]}, {"rows": {"people": "x"}}):
        h = {**json.loads(header), **damaged}
        (tmp_path / "h.jsonl").write_text("\n".join([json.dumps(h), *rows]) + "\n")
        with pytest.raises(InputError, match="header is damaged"):
            import_store(open_database(tmp_path / "h.db"), tmp_path / "h.jsonl")

    only_audit = tmp_path / "audit.db"
    with Gallery(only_audit, model="m", dim=DIM) as g:
        g.enroll("Dan", unit(rng), audit=("duplicate_allowed", {"of": 9}))
        g.delete("Dan")
    with pytest.raises(InputError, match="already holds audit"):
        import_store(open_database(only_audit), tmp_path / "x.jsonl")

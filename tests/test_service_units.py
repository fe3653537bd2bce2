"""The service's building blocks on their own: decision rules, config, keys, event log,
temperature sources, metrics and the ``maskface serve``/``keys`` CLI."""

from __future__ import annotations

import numpy as np
import pytest

from maskface.errors import InputError
from maskface.results import Face, Identity, Liveness, MaskPrediction
from maskface.service.config import Policy, ServiceConfig, config_from_dict, load_config
from maskface.service.decision import REASONS, decide
from maskface.storage import open_database


def face(label: str | None = "with_mask", person: int | None = 1) -> Face:
    f = Face(box=np.array([0, 0, 100, 100], np.float32), score=0.9,
             landmarks=np.zeros((5, 2), np.float32))
    if label is not None:
        f.mask = MaskPrediction(label, 0.9, {label: 0.9})
    f.identity = Identity(person, "Ann" if person else None, 0.8 if person else 0.1)
    f.liveness = Liveness(0.98, "live", 0.5)
    return f


def codes(d) -> list[str]:
    return list(d.reasons)


# -- decision ----------------------------------------------------------------------------------

def test_granted_when_every_rule_holds():
    d = decide([face()], Policy(), temperature=36.6)
    assert d.granted and d.reasons == () and d.to_dict()["person"]["name"] == "Ann"


@pytest.mark.parametrize("faces,policy,temp,expected", [
    ([], Policy(), 36.5, ["no_face"]),
    ([face(), face()], Policy(), 36.5, ["several_faces"]),
    ([face(person=None)], Policy(), 36.5, ["unknown_person"]),
    ([face("without_mask")], Policy(), 36.5, ["no_mask"]),
    ([face("mask_incorrect")], Policy(), 36.5, ["mask_incorrect"]),
    ([face(None)], Policy(), 36.5, ["mask_unknown"]),
    ([face()], Policy(), 37.5, ["temperature_high"]),  # at the threshold: denied
    ([face()], Policy(temperature_threshold=38.0), 37.9, []),
    ([face()], Policy(require_temperature=True), None, ["temperature_missing"]),
    ([face()], Policy(), None, []),
    ([face("without_mask")], Policy(mask_required=False), 36.5, []),
    ([face("mask_incorrect", None)], Policy(), 38.0,
     ["unknown_person", "mask_incorrect", "temperature_high"]),
])
def test_decision_rules(faces, policy, temp, expected):
    d = decide(faces, policy, temp)
    assert codes(d) == expected
    assert d.granted == (not expected)
    assert all(r in REASONS for r in d.reasons)


def test_allowed_groups():
    p = Policy(allowed_groups=("staff",))
    assert codes(decide([face()], p, 36.5, person_groups=["visitor"])) == ["group_not_allowed"]
    assert decide([face()], p, 36.5, person_groups=["visitor", "staff"]).granted
    # an unknown person is refused as unknown, not for their (non-existent) groups
    assert codes(decide([face(person=None)], p, 36.5)) == ["unknown_person"]


# -- config ------------------------------------------------------------------------------------

def test_config_file(tmp_path):
    cfg_file = tmp_path / "maskface.toml"
    cfg_file.write_text("""
db = "data/people.db"
[policy]
mask_required = false
temperature_threshold = 37.8
allowed_groups = ["staff"]
[limits]
max_upload_mb = 2
[temperature]
source = "simulated"
[snapshots]
enabled = true
""")
    cfg = load_config(cfg_file)
    assert cfg.db == tmp_path / "data" / "people.db"
    assert cfg.policy == Policy(mask_required=False, temperature_threshold=37.8,
                                allowed_groups=("staff",))
    assert cfg.limits.max_upload_bytes == 2 * 1024 * 1024
    assert cfg.temperature.source == "simulated"
    assert cfg.snapshot_dir == tmp_path / "data" / "snapshots"
    assert load_config(None) == ServiceConfig()


@pytest.mark.parametrize("data,message", [
    ({"policy": {"mask_requird": True}}, "unknown key"),
    ({"polic": {}}, "unknown section"),
    ({"policy": {"temperature_threshold": 99.5}}, "plausible"),
    ({"policy": {"match_threshold": 3}}, "match_threshold"),
    ({"temperature": {"source": "thermal"}}, "temperature.source"),
    ({"policy": "strict"}, "must be a table"),
    # a string "false" is truthy: it must not silently require masks
    ({"policy": {"mask_required": "false"}}, r"mask_required = 'false': expected true or false"),
    ({"policy": {"temperature_threshold": "37.5"}}, "expected a number"),
    ({"policy": {"allowed_groups": "staff"}}, "expected a list of strings"),
    ({"models": {"workers": 2.5}}, "expected a whole number"),
    ({"models": {"workers": True}}, "expected a whole number"),
    ({"db": 5}, "expected an SQLite file path"),
    # limits of 0 refused every upload; a negative sd crashed the first simulated reading;
    # TOML has nan, which passed a "< 0" check
    ({"limits": {"max_upload_mb": 0}}, "max_upload_mb 0 is outside"),
    ({"limits": {"max_photos": 0}}, "max_photos 0 is outside"),
    ({"limits": {"max_pixels": -1}}, "max_pixels -1 is outside"),
    ({"temperature": {"max_age_s": -5}}, "max_age_s -5 is outside"),
    ({"temperature": {"simulated_sd": -0.3}}, "simulated_sd -0.3"),
    ({"retention": {"snapshots_days": float("nan")}}, "snapshots_days nan is outside"),
    ({"limits": {"max_upload_mb": float("inf")}}, "max_upload_mb inf is outside"),
])
def test_config_errors(data, message):
    with pytest.raises(InputError, match=message):
        config_from_dict(data)


def test_config_numbers_may_be_whole():
    cfg = config_from_dict({"policy": {"temperature_threshold": 38, "min_face_size": 80},
                            "temperature": {"max_age_s": 5}})
    assert cfg.policy.temperature_threshold == 38 and cfg.policy.min_face_size == 80


def test_config_file_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy\nmask_required = ")
    with pytest.raises(InputError, match="invalid TOML"):
        load_config(bad)


# -- keys and events ---------------------------------------------------------------------------

def test_key_store(tmp_path):
    from maskface.service.auth import KeyStore

    ks = KeyStore(tmp_path / "k.db")
    key, rec = ks.create("kiosk", "door 1")
    assert key.startswith(f"mf_{rec.key_id}_")
    assert ks.verify(key).role == "kiosk"
    assert not ks.verify(key).allows("admin") and ks.verify(key).allows("kiosk")
    admin, _ = ks.create("admin")
    assert ks.verify(admin).allows("kiosk")
    for bad in ("", "mf_", key + "x", key.replace("mf_", "xx_"), f"mf_{rec.key_id}_guess"):
        assert ks.verify(bad) is None
    assert ks.revoke(rec.key_id) and ks.verify(key) is None and not ks.revoke(rec.key_id)
    with pytest.raises(InputError, match="unknown role"):
        ks.create("root")
    # a label names a door in the log, its filters and the metrics: one printable line
    assert ks.create("kiosk", "  lab east  ")[1].label == "lab east"
    for bad in ("a\nb", "tab\there", "x" * 65):
        with pytest.raises(InputError, match="1-64 printable characters"):
            ks.create("kiosk", bad)
    assert len(ks.list()) == 3  # nothing stored for the refused ones


def test_event_log_query(tmp_path):
    from maskface.service.events import EventLog

    log = EventLog(tmp_path / "e.db")
    a = log.record("granted", [], person_id=1, person_name="Ann", temperature=36.5, when=100.0)
    b = log.record("denied", ["no_mask"], person_id=2, when=200.0)
    c = log.record("denied", ["no_face"], when=300.0)
    assert [e.id for e in log.query()[0]] == [c.id, b.id, a.id]
    assert [e.id for e in log.query(since=150, until=300)[0]] == [b.id]
    assert [e.id for e in log.query(person_id=1)[0]] == [a.id]
    events, total = log.query(decision="denied", limit=1)
    assert total == 2 and [e.id for e in events] == [c.id]
    assert log.get(b.id).reasons == ["no_mask"] and log.get(999) is None
    with pytest.raises(ValueError):
        log.record("maybe", [])
    assert EventLog(tmp_path / "e.db").query()[1] == 3  # reopened: all there



def test_events_name_their_door_and_older_stores_gain_the_column(tmp_path, monkeypatch):
    """Many doors share one store: each event records its door (the kiosk key's label); a
    store made before (schema 4) is migrated, its old events reading no door."""
    import sqlite3

    from maskface.service.events import EventLog
    from maskface.storage import schema

    old = tmp_path / "old.db"
    with monkeypatch.context() as mp:  # a store as the maskface of schema 4 made it
        mp.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:4])
        mp.setattr(schema, "SCHEMA_VERSION", 4)
        with open_database(old) as db, db.transaction() as tx:
            assert "door" not in db.columns(tx, "events")
            tx.execute("INSERT INTO events (time, decision, reasons, faces) "
                       "VALUES (1.0, 'granted', '[]', 1)")
    log = EventLog(old)
    assert schema.SCHEMA_VERSION == 5 and log.get(1).door is None
    log.record("denied", ["no_mask"], door="door-2", when=2.0)
    log.record("granted", [], door="door-1", when=3.0)
    assert [e.door for e in log.query()[0]] == ["door-1", "door-2", None]
    assert [e.time for e in log.query(door="door-2")[0]] == [2.0]
    assert log.get(2).to_dict()["door"] == "door-2"
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    res = CliRunner().invoke(load_commands(), ["events", "--db", str(old), "--door", "door-2"])
    assert res.exit_code == 0 and [ln.split()[2:4] for ln in res.stdout.splitlines()] == [
        ["door-2", "denied"]], res.output
    with sqlite3.connect(old) as conn:
        assert ("events_door",) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()


def test_events_export_as_csv_pages_once_each_and_defuses_formulas(tmp_path):
    import csv

    from typer.testing import CliRunner

    from maskface.cli import load_commands
    from maskface.service.events import CSV_FIELDS, EventLog, events_csv

    log = EventLog(tmp_path / "e.db")
    # a name typed at enrolment that a spreadsheet would run (CSV injection)
    names = ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "Ann, Lee", "Zoë"]
    for k, name in enumerate(names):
        log.record("granted" if k % 2 else "denied", ["no_mask"] if k % 2 == 0 else [],
                   person_id=k + 1, person_name=name, temperature=36.6, score=-0.05,
                   when=1000.0 + k)
    text = "".join(events_csv(log, page=4))  # two pages
    rows = list(csv.DictReader(text.splitlines()))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [r["id"] for r in rows] == ["6", "5", "4", "3", "2", "1"]  # newest first, each once
    assert [r["person_name"] for r in rows][::-1] == [
        "'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "Ann, Lee", "Zoë"]
    assert rows[-1]["score"] == "-0.05" and rows[-1]["reasons"] == "no_mask"  # numbers stay
    assert [r["id"] for r in csv.DictReader(
        "".join(events_csv(log, since=1002.0, decision="denied")).splitlines())] == ["5", "3"]

    app, db, out = load_commands(), str(tmp_path / "e.db"), tmp_path / "log.csv"
    res = CliRunner().invoke(app, ["events", "--db", db, "--csv", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes().decode() == text and "6 events written" in res.stderr
    res = CliRunner().invoke(app, ["events", "--db", db, "--limit", "2", "--decision", "granted"])
    lines = res.stdout.splitlines()
    assert res.exit_code == 0 and len(lines) == 2 and lines[0].split()[0] == "6"
    assert "2 of 3 matching events" in res.stderr
    res = CliRunner().invoke(app, ["events", "--db", db, "--since", "last week"])
    assert res.exit_code == 1 and "expected an ISO 8601 time" in res.stderr
    res = CliRunner().invoke(app, ["events", "--db", db, "--until", "nan"])
    assert res.exit_code == 1 and "not a time" in res.stderr
    res = CliRunner().invoke(app, ["events", "--db", db, "--since", "1970-01-01T00:16:44",
                                   "--decision", "granted"])  # no offset: UTC
    assert [line.split()[0] for line in res.stdout.splitlines()] == ["6"]


def test_retention_deletes_old_events_and_snapshot_photos(tmp_path):
    import json as _json

    from typer.testing import CliRunner

    from maskface.cli import load_commands
    from maskface.service.config import Retention
    from maskface.service.events import EventLog, apply_retention

    day = 86400.0
    now = 1000 * day
    shots = tmp_path / "snapshots"
    shots.mkdir()
    log = EventLog(tmp_path / "e.db")
    a, b, c = (ch * 32 + ".jpg" for ch in "abc")  # names the service makes (32 hex digits)
    ages = {a: 400, b: 40, c: 3, None: 500}  # days old
    ids = {}
    for name, age in ages.items():
        if name:
            (shots / name).write_bytes(b"jpeg")
        ids[name] = log.record("granted", [], snapshot=name, when=now - age * day).id
    # events kept for a year, photos for 30 days
    assert apply_retention(log, Retention(365, 30), shots, now) == (2, 2)
    kept = {e.id: e.snapshot for e in log.query()[0]}
    assert kept == {ids[b]: None, ids[c]: c}  # b's event stays, its photo goes
    assert sorted(p.name for p in shots.iterdir()) == [c]
    assert apply_retention(log, Retention(365, 30), shots, now) == (0, 0)  # idempotent
    assert apply_retention(log, Retention(0, 0), shots, now + 999 * day) == (0, 0)  # 0: for ever
    with pytest.raises(InputError, match="retention.events_days -1"):
        Retention(events_days=-1)
    # the CLI, for cron: everything older than 1 day goes
    res = CliRunner().invoke(load_commands(), ["db", "prune", "--db", str(tmp_path / "e.db"),
                                               "--events-days", "1"])
    assert res.exit_code == 0, res.output
    out = _json.loads(res.output)
    assert out["events_deleted"] == 2 and out["snapshots_days"] == 30
    assert log.query()[1] == 0


def test_the_service_applies_retention_when_it_starts(tmp_path, monkeypatch):
    import asyncio
    import time

    from maskface.service import app as app_module
    from maskface.service.config import Retention
    from maskface.service.state import ServiceState

    state = ServiceState.open(ServiceConfig(db=tmp_path / "s.db", retention=Retention(2, 1)))
    state.events.record("granted", [], when=time.time() - 3 * 86400)
    state.events.record("denied", ["no_mask"])

    async def first_round_only(seconds):  # the hour's wait after the first round: stop there
        raise asyncio.CancelledError

    monkeypatch.setattr(app_module.asyncio, "sleep", first_round_only)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(app_module._keep_retention(state))
    assert [e.decision for e in state.events.query()[0]] == ["denied"]
    state.database.close()


# -- temperature -------------------------------------------------------------------------------

def test_temperature_sources(monkeypatch):
    from maskface.service import temperature as t

    sim = [t.SimulatedTemperature(seed=3).read().celsius for _ in range(2)]
    again = t.SimulatedTemperature(seed=3).read().celsius
    assert sim[0] == again and 35.0 < sim[0] < 38.0
    pushed = t.PushedTemperature(max_age_s=5)
    assert pushed.read() is None
    pushed.push(36.9, "door")
    assert pushed.read().celsius == 36.9
    now = t.time.time()
    monkeypatch.setattr(t.time, "time", lambda: now + 6)
    assert pushed.read() is None  # stale
    with pytest.raises(InputError, match="plausible"):
        pushed.push(98.4)
    assert t.create_source("none").read() is None
    assert pushed.read("door") is None  # pushed for no door (the sensor "door"): not a door's


def test_pushed_readings_belong_to_their_door_and_every_replica_sees_them(tmp_path):
    """One service, many doors: door-2's kiosk used door-1's latest reading (the service kept
    one reading in all); and a replica the sensor did not reach saw none."""
    from maskface.service import temperature as t

    mem = t.PushedTemperature()
    mem.push(38.4, "t1", door="door-1")
    assert mem.read("door-2") is None and mem.read("door-1").celsius == 38.4
    with open_database(tmp_path / "s.db") as db:
        a, b = t.PushedTemperature(db=db), t.PushedTemperature(db=db)  # two replicas
        a.push(36.7, "t1", door="door-1")
        b.push(38.9, "t2", door="door-2")
        one, two = b.read("door-1"), a.read("door-2")
        assert (one.celsius, one.source, one.door) == (36.7, "t1", "door-1")
        assert (two.celsius, two.source, two.door) == (38.9, "t2", "door-2")
        assert a.read("door-3") is None and a.read() is None
    with pytest.raises(InputError):
        t.create_source("infrared")


# -- metrics -----------------------------------------------------------------------------------

def test_metrics_text_format():
    from maskface.service.metrics import Counter, Histogram

    c = Counter("x_total", "things", ("kind",))
    c.inc("a")
    c.inc("a")
    c.inc('we"ird')
    text = "\n".join(c.render())
    assert 'x_total{kind="a"} 2' in text and 'x_total{kind="we\\"ird"} 1' in text
    h = Histogram("lat_seconds", "latency", buckets=(0.1, 1.0))
    for v in (0.05, 0.5, 5.0):
        h.observe(v)
    lines = h.render()
    assert 'lat_seconds_bucket{le="0.1"} 1' in lines and 'lat_seconds_bucket{le="1"} 2' in lines
    assert 'lat_seconds_bucket{le="+Inf"} 3' in lines and "lat_seconds_count 3" in lines


# -- CLI ---------------------------------------------------------------------------------------

def test_keys_cli(tmp_path):
    from typer.testing import CliRunner

    from maskface.cli import load_commands
    from maskface.service.auth import KeyStore

    app, db = load_commands(), tmp_path / "svc.db"
    runner = CliRunner()
    r = runner.invoke(app, ["keys", "create", "--role", "admin", "--label", "ops", "--db",
                            str(db)])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[0]
    rec = KeyStore(db).verify(key)
    assert rec is not None and rec.role == "admin"
    listing = runner.invoke(app, ["keys", "list", "--db", str(db)])
    assert rec.key_id in listing.stdout and key not in listing.stdout
    assert runner.invoke(app, ["keys", "revoke", rec.key_id, "--db", str(db)]).exit_code == 0
    assert KeyStore(db).verify(key) is None
    bad = runner.invoke(app, ["keys", "create", "--role", "root", "--db", str(db)])
    assert bad.exit_code == 1 and "unknown role" in bad.output
    assert runner.invoke(app, ["serve", "--help"]).exit_code == 0


def test_engine_workers_each_get_their_own_models_and_threads(astronaut):
    """workers = 2: two model sets with cores/2 threads each, serving requests in parallel
    with the same results as one set."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from maskface.service.config import Models
    from maskface.service.engine import Engine

    engine = Engine(Models(workers=2))
    a, b = engine._pool.get(), engine._pool.get()
    assert a.pipeline is not b.pipeline and a.recognizer.embedder is not b.recognizer.embedder
    threads = {s.get_session_options().intra_op_num_threads
               for s in a.pipeline.classifier.sessions}
    assert threads == {max(1, (os.cpu_count() or 1) // 2)}
    engine._pool.put(a)
    engine._pool.put(b)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: engine.analyze(astronaut), range(6)))
    assert all(len(r.faces) == 1 for r in results)
    ref = results[0].faces[0]
    for r in results[1:]:
        np.testing.assert_allclose(r.faces[0].embedding, ref.embedding, atol=1e-5)
        assert r.faces[0].mask.label == ref.mask.label


def test_serve_on_a_port_in_use_is_one_line_before_any_model_loads(tmp_path):
    import socket

    from typer.testing import CliRunner

    from maskface.cli import load_commands

    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = CliRunner().invoke(load_commands(), ["serve", "--port", str(port), "--db",
                                                   str(tmp_path / "s.db")])
    assert res.exit_code == 1
    assert res.stderr.strip() == (f"error: 127.0.0.1:{port}: address already in use (another "
                                  "service on it? choose --port)")
    assert not (tmp_path / "s.db").exists()  # refused before the store (or a model) opens
    # an address this machine does not have: the hint was "choose --port", which cannot help
    res = CliRunner().invoke(load_commands(), ["serve", "--host", "192.0.2.1", "--db",
                                               str(tmp_path / "s.db")])
    assert res.exit_code == 1 and res.stderr.strip().endswith(
        "(not an address of this machine; choose --host)"), res.stderr


def test_the_service_and_the_gallery_commands_share_one_default_store(tmp_path, monkeypatch):
    """`maskface enroll alice a.jpg` then `maskface serve` used two stores (the gallery's
    ~/.local/share/maskface/gallery.db and the service's ./maskface.db): alice was unknown at
    the door. Now every command and the service default to the same one."""
    from typer.testing import CliRunner

    from maskface.cli import load_commands
    from maskface.gallery import Gallery

    monkeypatch.delenv("MASKFACE_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    with Gallery(model="t", dim=4) as g:  # where `maskface enroll` writes without --db
        g.enroll("alice", np.eye(4, dtype=np.float32)[:1])
    store = tmp_path / "data" / "maskface" / "gallery.db"
    assert ServiceConfig().db == load_config(None).db == store
    run = CliRunner().invoke
    res = run(load_commands(), ["db", "export", str(tmp_path / "all.jsonl")])
    assert res.exit_code == 0 and '"people": 1' in res.output, res.output
    assert run(load_commands(), ["keys", "create", "--role", "kiosk"]).exit_code == 0
    with Gallery() as g:
        assert [p.name for p in g.people()] == ["alice"]
    assert not (tmp_path / "maskface.db").exists() and "note:" not in res.stderr
    # the service's old default, left in the folder: said, not silently read or ignored
    Gallery(tmp_path / "maskface.db").close()
    res = run(load_commands(), ["keys", "list"])
    assert res.exit_code == 0 and res.stderr.startswith(f"note: using {store}"), res.stderr
    monkeypatch.setenv("MASKFACE_DB", str(tmp_path / "site.db"))
    assert ServiceConfig().db == tmp_path / "site.db"

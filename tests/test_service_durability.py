"""A killed server loses nothing it acknowledged: enrol and check through a real uvicorn process,
SIGKILL it, and reopen the database (and a new server) to find every person and event."""

from __future__ import annotations

import signal

import pytest

from maskface.service.launch import free_port
from pg_util import postgres  # noqa: F401  (fixture)
from service_util import jpeg, start_server

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

@pytest.mark.slow
def test_sigkill_loses_no_committed_enrolment_or_event(tmp_path, astronaut):
    from maskface.gallery import Gallery
    from maskface.service.auth import KeyStore
    from maskface.service.events import EventLog

    db = tmp_path / "svc.db"
    Gallery(db).close()
    key, _ = KeyStore(db).create("admin")
    h = {"X-API-Key": key}
    port = free_port()
    proc = start_server(db, port, tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        photo = jpeg(astronaut)
        r = httpx.post(f"{base}/v1/people", headers=h, data={"name": "Eileen"},
                       files=[("photos", ("a.jpg", photo, "image/jpeg"))], timeout=60)
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        ids = []
        for t in (36.4, 38.9):
            r = httpx.post(f"{base}/v1/access/check", headers=h, data={"temperature": str(t)},
                           files={"image": ("k.jpg", photo, "image/jpeg")}, timeout=60)
            assert r.status_code == 200, r.text
            ids.append(r.json()["event_id"])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    with Gallery(db) as g:
        assert g.integrity_check()
        # one photo, plus its synthetic masked templates
        p = g.get(pid)
        assert p.name == "Eileen" and g.count_embeddings(pid) == 1 + p.n_templates
    events, total = EventLog(db).query()
    assert total == 2 and sorted(e.id for e in events) == sorted(ids)
    assert {e.temperature for e in events} == {36.4, 38.9}

    # a new server on the same file serves the same data
    proc = start_server(db, port, tmp_path / "server.log")
    try:
        assert httpx.get(f"{base}/v1/people/{pid}", headers=h).json()["name"] == "Eileen"
        assert httpx.get(f"{base}/v1/events", headers=h).json()["total"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _two_replicas(tmp_path, postgres):  # noqa: F811 (the fixture)
    """A new PostgreSQL store with an admin key and two real servers on it: the store's URL,
    the admin's headers, the two ports and the server processes (stop them with _stop)."""
    from maskface.service.auth import KeyStore
    from maskface.storage import open_database

    url = postgres.new_database()
    with open_database(url) as db:
        key, _ = KeyStore(db).create("admin")
    ports = free_port(), free_port()
    servers = [start_server(url, p, tmp_path / f"{n}.log") for p, n in zip(ports, "ab")]
    return url, {"X-API-Key": key}, ports, servers


def _stop(servers) -> None:
    for p in servers:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=30)


@pytest.mark.slow
def test_two_replicas_on_postgresql_agree_and_a_killed_one_loses_nothing(tmp_path, astronaut,
                                                                         postgres):  # noqa: F811
    """Two real servers on one PostgreSQL store: an enrolment on A is matched on B at once; B
    is SIGKILLed after acknowledging checks, and every acknowledged event is a row; a deletion
    on A is never matched again by B... nor by A."""
    from maskface.service.events import EventLog
    from maskface.storage import open_database

    url, h, (pa, pb), servers = _two_replicas(tmp_path, postgres)
    b = servers[1]
    A, B = f"http://127.0.0.1:{pa}", f"http://127.0.0.1:{pb}"
    photo = jpeg(astronaut)
    try:
        r = httpx.put(f"{A}/v1/policy", headers=h, timeout=30,
                      json={"mask_required": False, "liveness_required": False})
        assert r.status_code == 200, r.text
        r = httpx.post(f"{A}/v1/people", headers=h, data={"name": "Eileen"},
                       files=[("photos", ("a.jpg", photo, "image/jpeg"))], timeout=60)
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        ids = []
        for _ in range(2):  # B: the policy and the person A just stored
            r = httpx.post(f"{B}/v1/access/check", headers=h,
                           files={"image": ("k.jpg", photo, "image/jpeg")}, timeout=60)
            assert r.status_code == 200 and r.json()["decision"] == "granted", r.text
            ids.append(r.json()["event_id"])
        b.send_signal(signal.SIGKILL)
        b.wait(timeout=30)
        with open_database(url) as db:
            events, total = EventLog(db).query()
        assert total == 2 and sorted(e.id for e in events) == sorted(ids)
        servers.append(start_server(url, pb, tmp_path / "b.log"))
        assert httpx.delete(f"{A}/v1/people/{pid}", headers=h, timeout=30).status_code == 204
        for base in (B, A):
            r = httpx.post(f"{base}/v1/access/check", headers=h,
                           files={"image": ("k.jpg", photo, "image/jpeg")}, timeout=60)
            assert r.json()["decision"] == "denied" and r.json()["person"] is None, r.text
    finally:
        _stop(servers)


@pytest.mark.slow
def test_one_face_enrolled_at_once_on_two_replicas_is_stored_once(tmp_path, astronaut,
                                                                  postgres):  # noqa: F811
    """Four enrolments of the same face under four names, sent at once to two real servers on
    one PostgreSQL store: one is stored, the others are refused 409 already_enrolled (before
    the check and the write were one step, all four were stored)."""
    import threading

    _, h, (pa, pb), servers = _two_replicas(tmp_path, postgres)
    photo = jpeg(astronaut)
    answers = {}

    def enrol(name: str, port: int) -> None:
        r = httpx.post(f"http://127.0.0.1:{port}/v1/people", headers=h, data={"name": name},
                       files=[("photos", ("a.jpg", photo, "image/jpeg"))], timeout=120)
        answers[name] = (r.status_code, r.json().get("error", {}).get("code"))

    try:
        threads = [threading.Thread(target=enrol, args=(f"P{k}", (pa, pb)[k % 2]))
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        people = httpx.get(f"http://127.0.0.1:{pa}/v1/people", headers=h).json()
    finally:
        _stop(servers)
    codes = sorted(answers.values())
    assert codes == [(201, None)] + [(409, "already_enrolled")] * 3, answers
    assert len(people["people"]) == 1

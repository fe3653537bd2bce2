"""Gallery: CRUD, erasure, bad files, open-set search and concurrent writers."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import sqlite3

import numpy as np
import pytest

from maskface.errors import InputError, MaskfaceError
from maskface.gallery import (
    DuplicateNameError,
    ExactIndex,
    Gallery,
    GalleryError,
    GalleryIndex,
    UnknownPersonError,
)

DIM = 16


def unit(rng, n=1, dim=DIM):
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def gallery(tmp_path):
    with Gallery(tmp_path / "g.db", model="test", dim=DIM) as g:
        yield g


def test_crud_round_trip(gallery):
    rng = np.random.default_rng(0)
    a = gallery.enroll("Alice", unit(rng, 3), masked=[False, False, True],
                       metadata={"badge": 7})
    assert (a.name, a.n_embeddings, a.n_masked, a.metadata) == ("Alice", 3, 1, {"badge": 7})
    b = gallery.enroll("Bob", unit(rng, 2))
    assert [p.name for p in gallery.people()] == ["Alice", "Bob"]
    assert gallery.get("Bob").id == b.id == gallery.get(b.id).id
    gallery.add_embeddings("Bob", unit(rng, 2), masked=True)
    assert gallery.get(b.id).n_embeddings == 4 and gallery.get(b.id).n_masked == 2
    gallery.rename(b.id, "Robert")
    assert gallery.get("Robert").id == b.id
    with pytest.raises(UnknownPersonError):
        gallery.get("Bob")
    vecs, masked = gallery.embeddings("Alice")
    assert vecs.shape == (3, DIM) and masked.tolist() == [False, False, True]


def test_delete_erases_every_embedding(gallery, tmp_path):
    rng = np.random.default_rng(1)
    a = gallery.enroll("Alice", unit(rng, 4))
    gallery.enroll("Bob", unit(rng, 2))
    assert gallery.delete("Alice") == 4
    with sqlite3.connect(tmp_path / "g.db") as raw:
        left = raw.execute("SELECT COUNT(*) FROM embeddings WHERE person_id=?", (a.id,))
        assert left.fetchone()[0] == 0
        assert raw.execute("SELECT COUNT(*) FROM people WHERE name='Alice'").fetchone()[0] == 0
    assert gallery.count_embeddings() == 2 and len(gallery) == 1
    # The deleted person can no longer be matched.
    m = gallery.identify(gallery.embeddings("Bob")[0][0], threshold=0.0)[0]
    assert m.name == "Bob" and all(c[1] != "Alice" for c in m.candidates)


def test_duplicate_and_unknown_and_bad_input(gallery):
    rng = np.random.default_rng(2)
    gallery.enroll("Alice", unit(rng))
    with pytest.raises(DuplicateNameError):
        gallery.enroll("Alice", unit(rng))
    gallery.enroll("Bob", unit(rng))
    with pytest.raises(DuplicateNameError):
        gallery.rename("Bob", "Alice")
    for bad in (999, "Nobody"):
        with pytest.raises(UnknownPersonError):
            gallery.delete(bad)
        with pytest.raises(UnknownPersonError):
            gallery.add_embeddings(bad, unit(rng))
    with pytest.raises(InputError):
        gallery.enroll("  ", unit(rng))
    for forged in ("Eve\nGranted: Alice", "Eve\rX", "Eve\tX", "Eve\u2029X"):
        with pytest.raises(InputError, match="control characters"):
            gallery.enroll(forged, unit(rng))
        with pytest.raises(InputError, match="control characters"):
            gallery.rename("Bob", forged)
    assert gallery.enroll("  Zoë  Ünal ", unit(rng)).name == "Zoë  Ünal"  # not ASCII: fine
    # the same name typed with a combining accent is the same person, found either way
    with pytest.raises(DuplicateNameError):
        gallery.enroll("Zoe\u0308  Ünal", unit(rng))
    gallery.delete("Zoe\u0308  Ünal")
    # a name of digits would shadow that id in every "NAME or id" argument (remove 3 removed
    # the person named "3", not id 3)
    with pytest.raises(InputError, match="only digits"):
        gallery.enroll("3", unit(rng))
    with pytest.raises(InputError, match="only digits"):
        gallery.rename("Bob", " 42 ")
    with pytest.raises(InputError):
        gallery.enroll("Zero", np.zeros((1, DIM)))
    for junk in ("0.1, 0.2", [[0.1] * DIM, [0.2]], object()):  # was a raw ValueError
        with pytest.raises(InputError, match="array of numbers"):
            gallery.enroll("Junk", junk)
    with pytest.raises(InputError):
        gallery.enroll("Wrong dim", unit(rng, 1, DIM + 1))
    # A failed enrolment leaves nothing behind.
    assert [p.name for p in gallery.people()] == ["Alice", "Bob"]


def test_ids_beyond_sqlite_integers_are_unknown_people(gallery, tmp_path):
    """An id SQLite cannot hold is nobody (it raised OverflowError), by int or by digits,
    for every call that takes a person; the CLI's ``people`` commands exit cleanly."""
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    rng = np.random.default_rng(3)
    gallery.enroll("Alice", unit(rng))
    for bad in (2**63, -(2**63) - 1, "99999999999999999999999", 10**30):
        for call in (gallery.get, gallery.delete, lambda p: gallery.rename(p, "X"),
                     lambda p: gallery.add_embeddings(p, unit(rng)),
                     lambda p: gallery.update_metadata(p, {})):
            with pytest.raises(UnknownPersonError):
                call(bad)
    assert gallery.get("Alice").n_embeddings == 1
    db = str(tmp_path / "g.db")
    for args in (["people", "remove", "99999999999999999999999", "--yes"],
                 ["people", "rename", "99999999999999999999999", "Y"]):
        res = CliRunner().invoke(load_commands(), [*args, "--db", db])
        assert res.exit_code == 1 and "no enrolled person" in res.output, res.output
        assert "Traceback" not in res.output


def test_other_model_refused(tmp_path):
    rng = np.random.default_rng(3)
    with Gallery(tmp_path / "g.db", model="a", dim=DIM) as g:
        g.enroll("Alice", unit(rng))
    with pytest.raises(GalleryError, match="'a' embeddings"):
        Gallery(tmp_path / "g.db", model="b", dim=DIM)


def test_corrupt_and_foreign_files_untouched(tmp_path):
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"this is not an sqlite database at all" * 100)
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()
    with pytest.raises(MaskfaceError, match="not a usable gallery"):
        Gallery(bad, model="test", dim=DIM)
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == digest
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE accounts (id INTEGER)")
    before = foreign.read_bytes()
    with pytest.raises(GalleryError, match="not a maskface gallery"):
        Gallery(foreign, model="test", dim=DIM)
    assert foreign.read_bytes() == before


def test_open_set_identify(gallery):
    rng = np.random.default_rng(4)
    people = {f"P{i}": unit(rng, 3) for i in range(20)}
    for name, vecs in people.items():
        gallery.enroll(name, vecs)
    probe = people["P7"][1] + 0.1 * unit(rng)[0]
    stranger = unit(rng)[0]
    known, unknown = gallery.identify(np.stack([probe, stranger]), threshold=0.6)
    assert known.name == "P7" and known.score > 0.6
    assert not unknown.known and unknown.name is None and unknown.score < 0.6
    assert unknown.candidates  # the nearest people are still reported
    ok, score = gallery.verify(probe, "P7", threshold=0.6)
    assert ok and score > gallery.verify(probe, "P8", threshold=0.6)[1]


def test_cache_sees_other_connections(tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "g.db"
    with Gallery(path, model="test", dim=DIM) as reader, \
            Gallery(path, model="test", dim=DIM) as writer:
        v = unit(rng)
        assert not reader.identify(v, 0.5)[0].known  # empty gallery, cache filled
        writer.enroll("Alice", v)
        assert reader.identify(v, 0.5)[0].name == "Alice"
        writer.delete("Alice")
        assert not reader.identify(v, 0.5)[0].known


def test_exact_index_matches_brute_force():
    rng = np.random.default_rng(6)
    vecs, labels = unit(rng, 500), rng.integers(0, 60, 500)
    index = ExactIndex()
    assert isinstance(index, GalleryIndex)
    index.build(vecs, labels)
    q = unit(rng, 4)
    scores, ids = index.search(q, k=5)
    sims = q @ vecs.T
    for r in range(len(q)):
        best = {int(lab): float(sims[r, labels == lab].max()) for lab in np.unique(labels)}
        top = sorted(best, key=best.get, reverse=True)[:5]
        assert ids[r].tolist() == top
        np.testing.assert_allclose(scores[r], [best[t] for t in top], rtol=1e-5)


def _enrol_many(path: str, prefix: str, n: int) -> None:
    rng = np.random.default_rng(abs(hash(prefix)) % 2**32)
    with Gallery(path, model="test", dim=DIM) as g:
        for i in range(n):
            g.enroll(f"{prefix}{i}", unit(rng, 2))


def test_concurrent_enrolment_two_processes(tmp_path):
    path = str(tmp_path / "g.db")
    Gallery(path, model="test", dim=DIM).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_enrol_many, args=(path, p, 25)) for p in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Gallery(path, model="test", dim=DIM) as g:
        assert g.integrity_check()
        assert len(g) == 50 and g.count_embeddings() == 100
        assert all(p.n_embeddings == 2 for p in g.people())


def test_find_duplicate_uses_the_threshold_and_excludes_the_person(gallery):
    from maskface.gallery import duplicate_threshold, find_duplicate

    rng = np.random.default_rng(7)
    assert find_duplicate(gallery, unit(rng), [False], 0.4) is None  # empty gallery
    a_vecs, b_vecs = unit(rng, 2), unit(rng, 1)
    a = gallery.enroll("A", a_vecs)
    b = gallery.enroll("B", b_vecs)
    near_a = a_vecs[1] + 0.05 * unit(rng)[0]
    near_a /= np.linalg.norm(near_a)
    stranger = unit(rng)[0]
    new = np.stack([stranger, near_a])
    d = find_duplicate(gallery, new, [False, True], 0.4)
    assert d is not None and (d.person_id, d.name, d.photo) == (a.id, "A", 1)
    assert d.score == pytest.approx(float(a_vecs[1] @ near_a), abs=1e-5)
    assert d.threshold == duplicate_threshold(gallery, 0.4, True) == 0.4
    assert f"(id {a.id})" in d.message()
    # the same photos added to A itself: A does not count, and no one else is close
    assert find_duplicate(gallery, new, [False, True], 0.4, exclude=a.id) is None
    # ... while B, excluded, leaves A to be found
    assert find_duplicate(gallery, new, [False, True], 0.4, exclude=b.id).person_id == a.id
    # above every score: no duplicate
    assert find_duplicate(gallery, new, [False, True], 1.01) is None


def test_audit_is_written_with_the_enrolment_or_not_at_all(gallery):
    rng = np.random.default_rng(8)
    assert gallery.audit_events() == ([], 0)  # no audit table yet
    a = gallery.enroll("A", unit(rng), audit=("enrol_duplicate_override", {"by": "me"}))
    gallery.enroll("B", unit(rng))
    gallery.add_embeddings("B", unit(rng), audit=("add_photos_duplicate_override", {"x": 1}))
    with pytest.raises(DuplicateNameError):  # a failed enrolment leaves no audit record
        gallery.enroll("A", unit(rng), audit=("enrol_duplicate_override", {}))
    events, total = gallery.audit_events()
    assert total == 2 and [e.action for e in events] == ["add_photos_duplicate_override",
                                                         "enrol_duplicate_override"]
    assert events[1].person_id == a.id and events[1].person_name == "A"
    assert events[1].details == {"by": "me"}
    assert gallery.audit_events(person_id=a.id)[1] == 1
    gallery.delete(a.id)  # the record outlives the person
    assert gallery.audit_events()[1] == 2

"""``maskface watch --kiosk``: one decision per person at the door over a video of NUAA frames
(a live person, then a printed photo of them), with a gallery (skip without the shared data)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("trackers", reason="tracking needs the 'trackers' package")

FPS = 10.0


@pytest.fixture(scope="module")
def nuaa(data_dir):
    root = data_dir / "liveness" / "nuaa"
    if not (root / "real" / "0004").is_dir():
        pytest.skip(f"NUAA liveness frames not found under {root}")
    return root


@pytest.fixture(scope="module")
def door_video(nuaa, tmp_path_factory):
    """A person arrives blurred (moving), stands still, leaves; later a printed photo of them."""
    tmp = tmp_path_factory.mktemp("kiosk")
    live = cv2.imread(str(nuaa / "real" / "0004" / "0004_01_00_02_306.jpg"))
    spoof = cv2.imread(str(nuaa / "print" / "0004" / "0004_01_00_01_254.jpg"))
    empty = np.full_like(live, 90)
    frames = ([cv2.GaussianBlur(live, (0, 0), 4)] * 5 + [live] * 8 + [empty] * 25
              + [spoof] * 12 + [empty] * 5)
    path = tmp / "door.mp4"
    h, w = live.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="module")
def gallery_db(nuaa, tmp_path_factory):
    from maskface.detect import create_detector
    from maskface.gallery import Gallery
    from maskface.recognize import Recognizer, create_embedder
    from maskface.results import Face

    db = tmp_path_factory.mktemp("gal") / "people.db"
    emb = create_embedder("default")
    gallery = Gallery(db, model=emb.name, dim=emb.dim)
    img = cv2.imread(str(nuaa / "real" / "0004" / "0004_01_00_01_297.jpg"))
    det = create_detector("yunet").detect(img)
    i = int(np.argmax(det.scores))
    face = Face(box=det.boxes[i], score=float(det.scores[i]), landmarks=det.landmarks[i])
    gallery.enroll("Subject 4", Recognizer(emb).embed(img, [face]))
    gallery.close()
    return db


def _watch_kiosk(door_video, gallery_db, tmp_path, *extra, db_option="--db", policy=""):
    """Run ``maskface watch --kiosk`` (mask not required) and return its result and decisions."""
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    cfg = tmp_path / "door.toml"
    cfg.write_text("[policy]\nmask_required = false\n" + policy)
    out = tmp_path / "out"
    res = CliRunner().invoke(load_commands(), [
        "watch", str(door_video), "--kiosk", db_option, str(gallery_db), "--config", str(cfg),
        "-o", str(out), *extra])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in (out / "door.decisions.jsonl").read_text().splitlines()]
    return res, lines


def test_watch_kiosk_decides_once_per_person(door_video, gallery_db, tmp_path):
    res, lines = _watch_kiosk(door_video, gallery_db, tmp_path)
    assert len(lines) == 2, lines
    person, photo = lines
    assert person["decision"] == "granted" and person["person"]["name"] == "Subject 4", person
    # decided on sharp frames only (the blurred arrival, frames 0-4, is not used)
    assert person["evidence"]["used"] and min(person["evidence"]["used"]) >= 5
    assert photo["decision"] == "denied"
    assert [r["code"] for r in photo["reasons"]] == ["spoof_suspected"]
    # what the operator reads: who, by what score, and why not in words (it was "(name; code)")
    said = [ln.split(": ", 1)[1] for ln in res.output.splitlines() if ln.startswith("t=")]

    def who(p):
        return (f"Subject 4, score {p['score']:.3f} (threshold {p['threshold']:.3f}, "
                f"{p['condition']})")

    assert said == [f"GRANTED: {who(person['person'])}",
                    f"DENIED: {who(photo['person'])}; presentation attack suspected: show your "
                    "own face, not a photo or screen"], said


def test_watch_kiosk_stops_at_max_frames(door_video, gallery_db, tmp_path):
    """--max-frames 13 ends the video after the live person: one decision, 13 frames read."""
    res, lines = _watch_kiosk(door_video, gallery_db, tmp_path, "--max-frames", "13",
                              db_option="--gallery")  # the option's former name still works
    assert [d["decision"] for d in lines] == ["granted"], lines
    assert "over 13 frames" in res.output


def test_watch_kiosk_admits_the_groups_the_policy_allows(door_video, gallery_db, tmp_path):
    """With allowed_groups in the policy, the camera door refused everyone it recognised as
    "not in a group allowed to enter": it never looked the person's groups up."""
    import shutil

    from maskface.gallery import Gallery

    db = tmp_path / "people.db"
    shutil.copy(gallery_db, db)
    staff_only = 'allowed_groups = ["staff"]\n'
    _, lines = _watch_kiosk(door_video, db, tmp_path, "--max-frames", "13", policy=staff_only)
    assert [(d["decision"], [r["code"] for r in d["reasons"]]) for d in lines] == [
        ("denied", ["group_not_allowed"])], lines
    with Gallery(db) as g:
        g.update_metadata("Subject 4", {"groups": ["staff"]})
    _, lines = _watch_kiosk(door_video, db, tmp_path, "--max-frames", "13", policy=staff_only)
    assert [d["decision"] for d in lines] == ["granted"], lines


def test_a_camera_door_uses_its_rules_and_sensor_and_records_in_the_access_log(
        door_video, gallery_db, tmp_path):
    """``watch --kiosk --db STORE --door lab``: the camera is one of the building's doors — the
    lab's own policy and the lab sensor's pushed reading apply, and each decision is an event of
    door "lab" in the store's access log (it was only a JSON line before)."""
    import shutil

    from maskface.service.config import Policy
    from maskface.service.events import EventLog
    from maskface.service.settings import SettingsStore
    from maskface.service.temperature import PushedTemperature
    from maskface.storage import open_database

    db = tmp_path / "store.db"
    shutil.copy(gallery_db, db)
    with open_database(db) as store:
        SettingsStore(store).set_policy(Policy(mask_required=False, allowed_groups=["lab"]),
                                        door="lab")
        PushedTemperature(max_age_s=600, db=store).push(38.4, "lab-thermometer", door="lab")
        PushedTemperature(max_age_s=600, db=store).push(36.5, "front", door="front")
    cfg = tmp_path / "site.toml"
    cfg.write_text("[temperature]\nmax_age_s = 600\n[snapshots]\nenabled = true\n")
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    out = tmp_path / "out"
    res = CliRunner().invoke(load_commands(), [
        "watch", str(door_video), "--kiosk", "--db", str(db), "--config", str(cfg), "--door",
        "lab", "--max-frames", "13", "-o", str(out)])
    assert res.exit_code == 0, res.output
    (d,) = [json.loads(x) for x in (out / "door.decisions.jsonl").read_text().splitlines()]
    assert d["decision"] == "denied" and d["temperature"] == 38.4, d
    assert sorted(r["code"] for r in d["reasons"]) == ["group_not_allowed", "temperature_high"]
    events, total = EventLog(db).query()
    assert total == 1 and events[0].id == d["event_id"] and events[0].door == "lab"
    e = events[0]
    assert (e.decision, e.person_name, e.temperature, e.faces) == ("denied", "Subject 4", 38.4, 1)
    assert sorted(e.reasons) == ["group_not_allowed", "temperature_high"]
    assert e.liveness is not None and e.score == d["person"]["score"]
    photo = cv2.imread(str(tmp_path / "snapshots" / e.snapshot))  # beside the store, as the
    assert photo is not None and photo.shape[0] > 100  # service keeps them: one retention
    res = CliRunner().invoke(load_commands(), ["watch", str(door_video), "--door", "lab"])
    assert res.exit_code == 1 and "--door needs --kiosk and --db" in res.stderr


def test_watch_with_a_gallery_that_does_not_exist_is_one_line(door_video, tmp_path):
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    missing = tmp_path / "nobody.db"
    res = CliRunner().invoke(load_commands(), ["watch", str(door_video), "--db", str(missing),
                                               "-o", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines() == [
        f"error: {missing}: no gallery yet; enrol someone first (maskface enroll NAME PHOTO...)"]
    assert not missing.exists()  # looking for a gallery does not create one


def test_watch_kiosk_denies_two_people_at_the_door(nuaa, gallery_db, tmp_path):
    """Only the tracked face of each frame reached the decision, so two people side by side
    at the camera door were GRANTED as the enrolled one (the same frame through the API:
    several_faces)."""
    a = cv2.imread(str(nuaa / "real" / "0004" / "0004_01_00_02_306.jpg"))
    b = cv2.imread(str(nuaa / "real" / "0001" / "0001_00_00_01_105.jpg"))
    b = cv2.resize(b, (a.shape[1], a.shape[0]))
    both = np.hstack([a, b])
    video = tmp_path / "two" / "door.mp4"
    video.parent.mkdir()
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), FPS,
                             (both.shape[1], both.shape[0]))
    for _ in range(12):
        writer.write(both)
    writer.release()
    _, lines = _watch_kiosk(video, gallery_db, tmp_path)
    assert lines and all(d["decision"] == "denied" for d in lines), lines
    assert all([r["code"] for r in d["reasons"]] == ["several_faces"] for d in lines), lines

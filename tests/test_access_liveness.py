"""Access checks on live and printed-photo NUAA frames through the service: liveness, the
person at the door, quality gating and burst decisions (skip without the shared data)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from service_util import engine, jpeg  # noqa: F401  (fixture)

pytest.importorskip("fastapi")
from test_service_api import make_api  # noqa: E402

SUBJECT = "0004"


@pytest.fixture(scope="module")
def nuaa(data_dir):
    root = data_dir / "liveness" / "nuaa"
    if not (root / "real" / SUBJECT).is_dir():
        pytest.skip(f"NUAA liveness frames not found under {root}")
    return root


def frame(nuaa, kind: str, name: str) -> np.ndarray:
    img = cv2.imread(str(nuaa / kind / SUBJECT / name))
    assert img is not None
    return img


def blur(img: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), 4)


@pytest.fixture
def door(engine, tmp_path, nuaa):  # noqa: F811
    """A service with subject 0004 enrolled from one live frame; masks not required."""
    client, api = make_api(engine, tmp_path)
    with client:
        r = api.enrol("Subject 4", [jpeg(frame(nuaa, "real", "0004_01_00_01_297.jpg"))])
        assert r.status_code == 201, r.text
        r = api.put("/v1/policy", headers=api.h("admin"), json={"mask_required": False})
        assert r.json()["policy"]["liveness_required"] is True  # the default
        yield api


def codes(body) -> list[str]:
    return [x["code"] for x in body["reasons"]]


def burst(api, frames: list[np.ndarray], temperature: float = 36.6):
    files = [("images", (f"f{i}.jpg", jpeg(f), "image/jpeg")) for i, f in enumerate(frames)]
    return api.post("/v1/access/check", headers=api.h("kiosk"), files=files,
                    data={"temperature": str(temperature)})


def test_printed_photo_of_enrolled_person_is_denied_as_spoof(door, nuaa):
    r = door.check(jpeg(frame(nuaa, "print", "0004_01_00_01_254.jpg")), temperature=36.6)
    body = r.json()
    assert body["decision"] == "denied" and "spoof_suspected" in codes(body), body
    assert body["liveness"]["label"] == "spoof" and body["liveness"]["score"] < 0.5
    ev = door.get(f"/v1/events/{body['event_id']}", headers=door.h("admin")).json()
    assert ev["reasons"] == codes(body) and ev["liveness"] < 0.5


def test_live_frame_is_granted_and_score_is_in_the_event(door, nuaa):
    body = door.check(jpeg(frame(nuaa, "real", "0004_01_00_02_306.jpg")), temperature=36.6).json()
    assert body["decision"] == "granted", body
    assert body["person"]["name"] == "Subject 4" and body["liveness"]["score"] >= 0.5
    ev = door.get(f"/v1/events/{body['event_id']}", headers=door.h("admin")).json()
    assert ev["liveness"] == body["liveness"]["score"]


def test_grey_camera_frame_is_denied_with_its_reason_not_as_an_attack(door, nuaa):
    img = frame(nuaa, "real", "0004_01_00_02_306.jpg")  # granted in colour (test above)
    grey = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    body = door.check(jpeg(grey), temperature=36.6).json()
    assert body["decision"] == "denied" and codes(body) == ["grey_camera"], body
    assert "colour camera" in body["reasons"][0]["message"]
    assert body["liveness"]["label"] == "unknown" and body["liveness"]["problem"] == "grey_frame"
    assert body["person"]["name"] == "Subject 4"  # recognition itself works on grey frames


def test_background_passer_by_is_ignored_unless_strict(door, nuaa):
    # A live frame with a second, small face in the background (the detector finds both).
    img = frame(nuaa, "real", "0004_01_06_03_124.jpg")
    body = door.check(jpeg(img), temperature=36.6).json()
    assert len(body["faces"]) >= 2
    assert body["decision"] == "granted", body
    assert len(body["ignored_faces"]) == len(body["faces"]) - 1
    # Only the person at the door is recognised and liveness-checked; the others are counted.
    judged = [f for f in body["faces"] if f["identity"] is not None]
    assert len(judged) == 1 and judged[0]["liveness"] is not None
    assert all(f.get("liveness") is None for f in body["faces"] if f["identity"] is None)
    door.put("/v1/policy", headers=door.h("admin"),
             json={"mask_required": False, "single_person_strict": True})
    body = door.check(jpeg(img), temperature=36.6).json()
    assert body["decision"] == "denied" and codes(body) == ["several_faces"]


def test_burst_with_one_good_frame_among_blurred_ones_is_granted(door, nuaa):
    names = ["0004_01_00_02_306.jpg", "0004_01_00_02_415.jpg", "0004_01_06_03_232.jpg"]
    imgs = [frame(nuaa, "real", n) for n in names]
    body = burst(door, [blur(imgs[0]), imgs[1], blur(imgs[2])]).json()
    assert body["decision"] == "granted", body
    assert body["frames"] == 3 and body["evidence"]["used"] == [1]
    ev = body["evidence"]["frames"]
    assert "face_blurred" in ev[0]["problems"] and "face_blurred" in ev[2]["problems"]
    # The same burst without the good frame: advice, not a guess at the identity.
    body = burst(door, [blur(imgs[0]), blur(imgs[2])]).json()
    assert body["decision"] == "denied" and "face_blurred" in codes(body), body
    assert "unknown_person" not in codes(body) and body["person"] is None
    # ... nor a name anywhere else in the answer (faces, evidence): it went back to the kiosk
    assert all(f["identity"] is None for f in body["faces"]), body["faces"]
    assert all(f.get("person") is None for f in body["evidence"]["frames"])
    body = door.check(jpeg(blur(imgs[0])), temperature=36.6).json()
    assert "face_blurred" in codes(body) and all(f["identity"] is None for f in body["faces"])


def test_burst_of_printed_photo_is_denied(door, nuaa):
    prints = sorted((nuaa / "print" / SUBJECT).glob("*.jpg"))[:3]
    body = burst(door, [cv2.imread(str(p)) for p in prints]).json()
    assert body["decision"] == "denied" and "spoof_suspected" in codes(body), body


def test_small_face_is_told_to_come_closer(door, nuaa):
    img = frame(nuaa, "real", "0004_01_00_02_306.jpg")
    small = cv2.resize(img, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    body = door.check(jpeg(small), temperature=36.6).json()
    assert body["decision"] == "denied" and "face_too_small" in codes(body), body
    assert body["reasons"][0]["message"] == "come closer to the camera"


def test_burst_frame_limit_and_empty_request(door, nuaa):
    img = jpeg(frame(nuaa, "real", "0004_01_00_02_306.jpg"))
    files = [("images", (f"f{i}.jpg", img, "image/jpeg")) for i in range(11)]
    r = door.post("/v1/access/check", headers=door.h("kiosk"), files=files)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = door.post("/v1/access/check", headers=door.h("kiosk"), data={"temperature": "36.6"})
    assert r.status_code == 422

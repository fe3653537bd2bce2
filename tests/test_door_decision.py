"""Door decision rules on their own: the person at the door, liveness, quality gating, bursts;
and the quality measures on a real photo."""

from __future__ import annotations

import cv2
import numpy as np

from maskface.results import Face, Identity, Liveness, MaskPrediction, Quality
from maskface.service.config import Policy
from maskface.service.decision import decide, decide_burst, door_face

NO_MASK = Policy(mask_required=False)


def face(x=100, y=100, size=120, live=0.9, person=1, problems=(), q=0.8) -> Face:
    f = Face(box=np.array([x, y, x + size, y + size], np.float32), score=0.9,
             landmarks=np.zeros((5, 2), np.float32))
    f.identity = Identity(person, f"P{person}" if person else None, 0.7 if person else 0.1)
    f.mask = MaskPrediction("without_mask", 0.9)
    f.liveness = None if live is None else Liveness(live, "live" if live >= 0.5 else "spoof",
                                                    0.5)
    f.quality = Quality(q, size, 200.0, 0.9, 120.0, tuple(problems))
    return f


def codes(d):
    return list(d.reasons)


def test_spoof_and_unknown_liveness_deny_unless_not_required():
    assert codes(decide([face(live=0.2)], NO_MASK, 36.5)) == ["spoof_suspected"]
    assert codes(decide([face(live=None)], NO_MASK, 36.5)) == ["liveness_unknown"]
    off = Policy(mask_required=False, liveness_required=False)
    assert decide([face(live=0.2)], off, 36.5).granted
    # the policy's own threshold overrides the model's
    strict = Policy(mask_required=False, liveness_threshold=0.95)
    assert codes(decide([face(live=0.9)], strict, 36.5)) == ["spoof_suspected"]


def test_a_grey_camera_is_named_not_taken_for_an_attack():
    def grey(live):
        f = face()
        f.liveness = Liveness(live, "unknown", 0.5, "grey_frame")
        return f

    assert codes(decide([grey(0.2)], NO_MASK, 36.5)) == ["grey_camera"]
    assert decide([grey(0.2)], Policy(mask_required=False, liveness_required=False), 36.5).granted
    shape = (480, 640)
    # a burst votes liveness over the frames that could be assessed
    mixed = [([grey(0.1)], shape), ([face(q=0.85, live=0.9)], shape), ([grey(0.2)], shape)]
    d = decide_burst(mixed, NO_MASK, 36.5)
    assert d.granted and d.face.liveness.score == 0.9 and d.face.liveness.problem is None
    d = decide_burst([([grey(0.1)], shape), ([grey(0.3)], shape)], NO_MASK, 36.5)
    assert codes(d) == ["grey_camera"] and d.face.liveness.problem == "grey_frame"


def test_door_face_is_large_and_central():
    big_edge, central = face(x=0, y=0, size=130, person=2), face(x=250, y=190, size=120)
    chosen, others = door_face([big_edge, central], (480, 640))
    assert chosen is central and others == [big_edge]


def test_passer_by_ignored_rival_or_strict_denies():
    door, passer = face(x=250, y=180, size=150), face(x=20, y=20, size=50, person=None)
    d = decide([door, passer], NO_MASK, 36.5, image_shape=(480, 640))
    assert d.granted and d.ignored == (passer,)
    strict = Policy(mask_required=False, single_person_strict=True)
    assert codes(decide([door, passer], strict, 36.5, image_shape=(480, 640))) == \
        ["several_faces"]
    rival = face(x=450, y=180, size=130, person=2)
    assert codes(decide([door, rival], NO_MASK, 36.5, image_shape=(480, 640))) == \
        ["several_faces"]


def test_quality_gate_gives_advice_and_no_identity():
    d = decide([face(problems=("blurred", "turned_away"))], NO_MASK, 36.5)
    assert codes(d) == ["face_blurred", "face_turned_away"]
    assert d.to_dict()["person"] is None
    assert codes(decide([face(size=40)], NO_MASK, 36.5)) == ["face_too_small"]
    lax = Policy(mask_required=False, quality_required=False)
    assert decide([face(problems=("blurred",))], lax, 36.5).granted


def test_burst_votes_over_the_best_frames():
    shape = (480, 640)
    frames = [([face(problems=("blurred",), q=0.3, person=None, live=0.1)], shape),
              ([face(q=0.9)], shape), ([face(q=0.85)], shape),
              ([face(q=0.7, person=2)], shape), ([face(q=0.2, problems=("blurred",))], shape),
              ([], shape)]
    d = decide_burst(frames, NO_MASK, 36.5)
    assert d.granted and d.face.identity.person_id == 1
    assert d.evidence["used"] == [1, 2, 3]
    assert [f["used"] for f in d.evidence["frames"]] == [False, True, True, True, False, False]
    # mean live score over the used frames decides liveness
    spoofy = [([face(q=0.9, live=0.1)], shape), ([face(q=0.8, live=0.3)], shape),
              ([face(q=0.7, live=0.95)], shape)]
    d = decide_burst(spoofy, NO_MASK, 36.5)
    assert codes(d) == ["spoof_suspected"]
    # no majority for one person: not recognised
    split = [([face(q=0.9, person=1)], shape), ([face(q=0.8, person=2)], shape),
             ([face(q=0.7, person=None)], shape)]
    assert "unknown_person" in codes(decide_burst(split, NO_MASK, 36.5))
    assert codes(decide_burst([([], shape)], NO_MASK, 36.5)) == ["no_face"]


def test_quality_measures_on_a_real_photo(astronaut):
    from maskface.detect import create_detector
    from maskface.quality import QualityAssessor

    det = create_detector("yunet").detect(astronaut)
    f = Face(box=det.boxes[0], score=float(det.scores[0]), landmarks=det.landmarks[0])
    qa = QualityAssessor()
    sharp = qa.measure(astronaut, f)
    assert sharp.ok and sharp.frontal > 0.7
    blurred = qa.measure(cv2.GaussianBlur(astronaut, (0, 0), 5), f)
    assert "blurred" in blurred.problems and blurred.score < sharp.score
    dark = qa.measure((astronaut * 0.1).astype(np.uint8), f)
    assert "too_dark" in dark.problems
    # nose moved far to one side of the eyes: a turned head
    turned = Face(box=f.box, score=f.score, landmarks=f.landmarks.copy())
    turned.landmarks[2, 0] = turned.landmarks[1, 0] + 5
    assert "turned_away" in qa.measure(astronaut, turned).problems
    # half the face past the right edge: the box is clipped to the image and looks whole, and
    # its mask was judged on the half that shows (a bare face called masked, and let in)
    w = astronaut.shape[1]
    for shift, out in ((100, False), (250, False), (270, True), (290, True)):
        moved = cv2.warpAffine(astronaut, np.float32([[1, 0, shift], [0, 1, 0]]),
                               (w, astronaut.shape[0]))
        d = create_detector("yunet").detect(moved)
        g = Face(box=d.boxes[0], score=float(d.scores[0]), landmarks=d.landmarks[0])
        g.quality = qa.measure(moved, g)
        assert ("out_of_frame" in g.quality.problems) is out, shift
        if out:  # advice, and nothing judged
            assert "face_out_of_frame" in codes(decide([g], NO_MASK, 36.5))


def test_a_burst_proves_liveness_on_the_frames_that_name_the_person():
    """Two frames of an enrolled person's photo (spoof, or grey and so not assessable) and one
    live stranger were granted as the person: identity from the photos, liveness from the
    stranger's frame."""
    shape = (480, 640)
    stranger = face(q=0.7, person=None, live=0.99)
    photos = [([face(q=0.9, live=0.3)], shape), ([face(q=0.8, live=0.2)], shape),
              ([stranger], shape)]
    d = decide_burst(photos, NO_MASK, 36.5)
    assert codes(d) == ["spoof_suspected"] and d.face.liveness.score == 0.25

    def grey(q):
        f = face(q=q)
        f.liveness = Liveness(0.1, "unknown", 0.5, "grey_frame")
        return f

    d = decide_burst([([grey(0.9)], shape), ([grey(0.8)], shape), ([stranger], shape)],
                     NO_MASK, 36.5)
    assert codes(d) == ["grey_camera"]


def test_a_second_person_in_any_frame_of_a_burst_denies():
    """A frame showing a second person at the door was dropped and the burst decided on the
    rest (granted); under single_person_strict a passer-by in one frame was dropped too."""
    shape = (480, 640)
    door = dict(x=250, y=180, size=150)
    clean = [([face(**door, q=0.9)], shape), ([face(**door, q=0.85)], shape)]
    rival = ([face(**door, q=0.8), face(x=450, y=180, size=130, person=2)], shape)
    d = decide_burst([*clean, rival], NO_MASK, 36.5)
    assert codes(d) == ["several_faces"] and d.face is None
    assert d.evidence["frames"][2]["problems"] == ["several_faces"]
    passer = ([face(**door, q=0.8), face(x=20, y=20, size=50, person=None)], shape)
    assert decide_burst([*clean, passer], NO_MASK, 36.5).granted
    strict = Policy(mask_required=False, single_person_strict=True)
    assert codes(decide_burst([*clean, passer], strict, 36.5)) == ["several_faces"]


def test_a_gated_burst_names_no_one_in_its_evidence():
    shape = (480, 640)
    blurred = [([face(q=0.3, problems=("blurred",))], shape)] * 2
    d = decide_burst(blurred, NO_MASK, 36.5)
    assert codes(d) == ["face_blurred"] and d.to_dict()["person"] is None
    assert all(f.get("person") is None for f in d.evidence["frames"])

"""Recognition: SFace embeddings (checked against OpenCV's own wrapper), the pipeline stage,
real same/different pairs, the CLI round trip and the adapted-model export."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from maskface.align import align_faces
from maskface.cli import load_commands
from maskface.errors import InputError
from maskface.gallery import Gallery
from maskface.models import model_path
from maskface.recognize import Recognizer, SFaceEmbedder, central_face, single_face
from maskface.recognize.faces import portrait_detector

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(load_commands(), list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def embedder():
    return SFaceEmbedder()


@pytest.fixture(scope="module")
def detector():
    return portrait_detector()


def lfw(data_dir, name: str, idx: int):
    return data_dir / "lfw" / "images" / name / f"{name}_{idx:04d}.jpg"


def aligned(detector, path_or_image):
    from maskface.io import load_image

    img = load_image(path_or_image)
    return align_faces(img, central_face(detector, img).face.landmarks[None])[0]


def test_embeddings_match_opencv_face_recognizer(embedder, detector, astronaut, data_dir):
    faces = [aligned(detector, astronaut)] + [
        aligned(detector, lfw(data_dir, n, i))
        for n, i in (("Abdullah_Gul", 1), ("Adrien_Brody", 3), ("Abdullah_Gul", 7))]
    ours = embedder.embed(np.stack(faces))
    rec = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")
    ref = np.stack([rec.feature(f).ravel() for f in faces])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert ours.shape == (4, 128) and embedder.dim == 128
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_less(1 - 1e-4, (ours * ref).sum(1))


def test_embedder_rejects_unaligned_input(embedder):
    with pytest.raises(InputError):
        embedder.embed(np.zeros((2, 100, 100, 3), np.uint8))
    assert embedder.embed(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0, 128)


@pytest.mark.data
def test_same_person_scores_higher_on_lfw_pairs(embedder, detector, data_dir):
    from maskface.eval.metrics import roc_auc
    from maskface.eval.verify import read_lfw_pairs

    pairs = read_lfw_pairs(data_dir / "lfw")
    pick = pairs[:12] + pairs[300:312]  # fold 1: the first matched and mismatched pairs
    emb = {p: embedder.embed(aligned(detector, p))[0] for pr in pick for p in (pr.a, pr.b)}
    scores = np.array([emb[p.a] @ emb[p.b] for p in pick])
    same = np.array([p.same for p in pick])
    assert same.sum() == 12
    assert scores[same].mean() > scores[~same].mean() + 0.3
    assert roc_auc(scores, same) > 0.95


def test_recognizer_in_pipeline_open_set(embedder, astronaut, tmp_path, data_dir):
    from maskface.pipeline import Pipeline

    with Gallery(tmp_path / "g.db", model=embedder.name, dim=embedder.dim) as g:
        rec = Recognizer(embedder, g)
        pipe = Pipeline(classifier=None, recognizer=rec)
        result = pipe.analyze(astronaut)
        assert len(result.faces) == 1 and not result.faces[0].identity.known  # empty gallery
        g.enroll("Eileen Collins", result.faces[0].embedding[None])
        again = pipe.analyze(astronaut)
        assert again.faces[0].identity.name == "Eileen Collins"
        assert again.faces[0].identity.score > 0.99
        stranger = pipe.analyze(lfw(data_dir, "Adrien_Brody", 3))
        assert stranger.faces and all(not f.identity.known for f in stranger.faces)
        assert json.loads(again.to_json())["faces"][0]["identity"]["name"] == "Eileen Collins"


def test_single_face_refuses_crowds_and_blanks(detector, data_dir):
    from maskface.io import load_image

    with pytest.raises(InputError, match="no face"):
        single_face(detector, np.full((200, 200, 3), 128, np.uint8), "blank.png")
    two = load_image(lfw(data_dir, "Adrien_Brody", 2))  # a second face in the background
    with pytest.raises(InputError, match="2 faces"):
        single_face(detector, two, "two.jpg")
    assert single_face(detector, two, "two.jpg", pick_largest=True).how == "largest"


@pytest.mark.data
def test_cli_enroll_identify_verify_round_trip(tmp_path, data_dir, astronaut_path):
    db = str(tmp_path / "people.db")
    gul = [str(lfw(data_dir, "Abdullah_Gul", i)) for i in (1, 6, 7)]
    brody = [str(lfw(data_dir, "Adrien_Brody", i)) for i in (2, 3, 5)]
    # (masked templates are tested in test_masked_recognition.py; counts here are photos)
    res = invoke("enroll", "Abdullah Gul", gul[0], gul[1], "--db", db, "--largest",
                 "--templates", "0")
    assert res.exit_code == 0, res.output
    assert "2 embeddings" in res.output
    res = runner.invoke(load_commands(), ["enroll", "Adrien Brody", brody[0], "--db", db])
    assert res.exit_code == 1 and "2 faces" in res.output and brody[0] in res.output
    assert invoke("enroll", "Adrien Brody", brody[0], "--largest", "--db", db,
                  "--templates", "0").exit_code == 0
    res = runner.invoke(load_commands(), ["enroll", "Adrien Brody", brody[1], "--db", db])
    assert res.exit_code == 1 and "already enrolled" in res.output
    assert invoke("enroll", "Adrien Brody", brody[1], "--add", "--largest", "--db", db,
                  "--templates", "0").exit_code == 0

    out = tmp_path / "out"
    res = invoke("identify", gul[2], brody[2], str(astronaut_path), "--db", db, "--out",
                 str(out), "--classifier", "none")
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith(gul[2]) and "Abdullah Gul" in lines[0]
    assert "Adrien Brody" in lines[1]
    assert "unknown" in lines[2] and "Abdullah" not in lines[2] and "Brody" not in lines[2]
    record = json.loads((out / "Abdullah_Gul_0007.json").read_text())
    assert record["faces"][0]["identity"]["name"] == "Abdullah Gul"
    assert (out / "Abdullah_Gul_0007.jpg").is_file()

    res = invoke("verify", gul[1], gul[2], "--json", "--largest")  # background faces
    same = json.loads(res.stdout)
    res = invoke("verify", gul[1], brody[2], "--json", "--largest")
    diff = json.loads(res.stdout)
    assert same["same"] and not diff["same"] and same["score"] > diff["score"]

    res = invoke("people", "list", "--db", db, "--json")
    people = {p["name"]: p for p in json.loads(res.stdout)}
    assert people["Adrien Brody"]["embeddings"] == 2
    assert invoke("people", "rename", "Adrien Brody", "A. Brody", "--db", db).exit_code == 0
    res = invoke("people", "remove", "A. Brody", "--yes", "--db", db)
    assert "2 embeddings" in res.output
    with Gallery(db) as g:
        assert [p.name for p in g.people()] == ["Abdullah Gul"]
        assert g.count_embeddings() == 2
    res = runner.invoke(load_commands(), ["people", "remove", "Nobody", "--yes", "--db", db])
    assert res.exit_code == 1 and "no enrolled person" in res.output


def test_adapted_export_matches_its_formula(embedder, tmp_path):
    pytest.importorskip("onnx")
    from maskface.recognize import OnnxEmbedder
    from maskface.train.recog_model import export_adapted, extract_features, sface_tail

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (3, 112, 112, 3), dtype=np.uint8)
    w0, b0 = sface_tail()
    feats, sface_emb = extract_features(crops, progress=False)
    # Zero residual: the folded tail reproduces SFace exactly.
    base = feats.astype(np.float32) @ w0.T + b0
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    np.testing.assert_array_less(1 - 1e-4, (base * embedder.embed(crops)).sum(1))
    u = rng.standard_normal((128, 4)).astype(np.float32) * 0.05
    v = rng.standard_normal((4, feats.shape[1])).astype(np.float32) * 0.01
    path = export_adapted(u, v, tmp_path / "adapted.onnx",
                          {"embedder_name": "t", "threshold": "0.3"})
    model = OnnxEmbedder(path)
    want = feats.astype(np.float32) @ (w0 + u @ v).T + b0
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert model.name == "t" and model.dim == 128
    np.testing.assert_array_less(1 - 1e-3, (model.embed(crops) * want).sum(1))



@pytest.mark.parametrize("slope_scale", [0.9, 1.5])  # Max form, and the general form
def test_fast_prelu_rewrite_gives_identical_values(slope_scale):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from maskface.models import ort_session
    from maskface.train.recog_model import fast_prelu

    rng = np.random.default_rng(0)
    slope = (rng.uniform(-0.2, 1.0, (4, 1, 1)) * slope_scale).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "s"], ["y"])], "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 5, 5])],
        [numpy_helper.from_array(slope, "s")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.normal(size=(1, 4, 5, 5)).astype(np.float32)
    want = ort_session(model.SerializeToString(), 1).run(None, {"x": x})[0]
    fast = fast_prelu(model)
    onnx.checker.check_model(fast)
    assert not any(n.op_type == "PRelu" for n in fast.graph.node)
    got = ort_session(fast.SerializeToString(), 1).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)


def test_shipped_fast_sface_matches_the_release(embedder, detector, astronaut):
    from maskface.recognize import OnnxEmbedder

    face = aligned(detector, astronaut)[None]
    ref = OnnxEmbedder("sface")._embed(face)  # the release graph, raw (unnormalised) output
    fast = OnnxEmbedder("sface_fast")._embed(face)
    np.testing.assert_allclose(fast, ref, atol=1e-4)


def test_mask_aware_default_keeps_sface_for_unmasked_faces(embedder, detector, astronaut):
    from maskface.recognize import DEFAULT_EMBEDDER, create_embedder, default_threshold

    aware = create_embedder(DEFAULT_EMBEDDER)
    face = aligned(detector, astronaut)
    out = aware.embed(np.stack([face, face]), masked=[False, True])
    base = embedder.embed(face)[0]
    # Same space as SFace (galleries are shared), SFace's own vector for an unmasked face,
    # the adapter's (close, not equal) for a face flagged masked.
    assert aware.name == "sface" and aware.label != "sface"
    assert default_threshold(aware) == default_threshold(embedder)
    assert out[0] @ base > 0.9999
    assert 0.6 < out[1] @ base < 0.9999
    assert aware.embed(face[None]) @ base > 0.9999  # no mask state: treated as unmasked
    with pytest.raises(InputError):
        aware.embed(np.stack([face, face]), masked=[True])


def test_cli_refuses_the_same_face_under_a_second_name(tmp_path, astronaut, astronaut_path):
    db = str(tmp_path / "people.db")
    flipped = tmp_path / "flipped.jpg"
    cv2.imwrite(str(flipped), np.ascontiguousarray(astronaut[:, ::-1]))
    # one photo given twice (by two spellings) is enrolled once, not as two photos
    res = invoke("enroll", "A", str(astronaut_path), f"{astronaut_path.parent}/./"
                 f"{astronaut_path.name}", "--db", db, "--templates", "0")
    assert res.exit_code == 0 and "1 photo(s) given twice" in res.output
    with Gallery(db) as g:
        a_id = g.get("A").id
        assert g.get("A").n_embeddings == 1
    res = runner.invoke(load_commands(), ["enroll", "B", str(flipped), "--db", db])
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {flipped} matches 'A'")
    assert f"'A' (id {a_id})" in lines[0] and "--allow-duplicate" in lines[0]
    with Gallery(db) as g:
        assert [p.name for p in g.people()] == ["A"] and g.audit_events()[1] == 0
    # A's own photo may be added to A; not to someone else
    assert invoke("enroll", "A", str(flipped), "--add", "--db", db).exit_code == 0
    res = invoke("enroll", "B", str(flipped), "--db", db, "--allow-duplicate")
    assert res.exit_code == 0 and "audit log" in res.output
    res = runner.invoke(load_commands(), ["enroll", "B", str(astronaut_path), "--add",
                                          "--db", db])
    assert res.exit_code == 1 and f"(id {a_id})" in res.output
    with Gallery(db) as g:
        events, total = g.audit_events()
        assert total == 1 and events[0].person_name == "B"
        assert events[0].details["matched"]["person_id"] == a_id
        assert events[0].details["via"] == "cli"
    res = invoke("people", "audit", "--db", db)
    assert "enrol_duplicate_override" in res.output and "B (id" in res.output


def test_cli_refuses_to_enrol_from_a_face_too_small_to_recognise(tmp_path, astronaut):
    db = str(tmp_path / "people.db")
    small = tmp_path / "small.jpg"
    cv2.imwrite(str(small), cv2.resize(astronaut, (96, 96), interpolation=cv2.INTER_AREA))
    res = runner.invoke(load_commands(), ["enroll", "Small", str(small), "--db", db])
    assert res.exit_code == 1
    line, = res.stderr.strip().splitlines()
    assert line.startswith(f"error: {small}: the face is only ") and "at least 32 px" in line
    assert line.endswith("or pass --allow-small-face")
    with Gallery(db) as g:
        assert g.people() == []
    assert invoke("enroll", "Small", str(small), "--db", db, "--allow-small-face").exit_code == 0


def test_cli_remove_deletes_the_snapshot_photos_of_the_persons_events(tmp_path, astronaut_path):
    from maskface.service.events import EventLog

    db = tmp_path / "store.db"
    assert invoke("enroll", "A", str(astronaut_path), "--db", str(db),
                  "--templates", "0").exit_code == 0
    with Gallery(db) as g:
        pid = g.get("A").id
    shots = tmp_path / "snapshots"  # the service's default place: beside the database
    shots.mkdir()
    a1, x1 = "a" * 32 + ".jpg", "f" * 32 + ".jpg"  # names the service makes
    (shots / a1).write_bytes(b"jpeg")
    (shots / x1).write_bytes(b"jpeg")
    log = EventLog(db)
    log.record("granted", [], person_id=pid, person_name="A", snapshot=a1)
    log.record("denied", ["unknown_person"], snapshot=x1)
    res = invoke("people", "remove", "A", "--yes", "--db", str(db))
    assert res.exit_code == 0 and "1 snapshot photos" in res.output
    assert sorted(p.name for p in shots.iterdir()) == [x1]
    events = {e.person_id: e.snapshot for e in log.query()[0]}
    assert events == {pid: None, None: x1}  # the access record stays, without the photo


def test_a_gallery_made_with_fused_is_used_with_fused_without_saying_so(tmp_path,
                                                                        astronaut_path):
    """identify, watch and the service take the embedder the gallery's people were enrolled
    with (each embedding space has its embedder); naming another one is a one-line error."""
    from maskface.recognize import EMBEDDER_OF_SPACE, SPACE_OF_EMBEDDER, embedder_for_gallery

    assert all(SPACE_OF_EMBEDDER[EMBEDDER_OF_SPACE[s]] == s for s in EMBEDDER_OF_SPACE)
    with pytest.raises(InputError, match="name its ONNX file with --model"):
        embedder_for_gallery("my_model")
    db = tmp_path / "fused.db"
    assert invoke("enroll", "A", str(astronaut_path), "--db", str(db), "--model", "fused",
                  "--templates", "0").exit_code == 0
    out = tmp_path / "out"
    res = invoke("identify", str(astronaut_path), "--db", str(db), "--out", str(out))
    assert res.exit_code == 0, res.output
    record = json.loads((out / "astronaut.json").read_text())
    assert record["model"].startswith("fused(") and record["faces"][0]["identity"]["name"] == "A"

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from maskface.service import create_app
    from maskface.service.config import Models, ServiceConfig

    with TestClient(create_app(ServiceConfig(db=db))) as client:
        health = client.get("/v1/health").json()
    assert health["models"]["embedder"] == "sface+reid0095" and health["people"] == 1
    with pytest.raises(InputError, match="enrolled with 'sface\\+reid0095' embeddings"):
        create_app(ServiceConfig(db=db, models=Models(embedder="sface_masked")))


def test_verify_warns_when_a_face_is_too_small_to_compare(astronaut, astronaut_path, tmp_path):
    """A 9-px face scored 0.04 against its own photo and was called "different people" with
    no hint that the comparison meant nothing; enrolment refuses such faces."""
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA))
    res = CliRunner().invoke(load_commands(), ["verify", str(astronaut_path), str(tiny),
                                               "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["warnings"]) == 1 and out["warnings"][0].startswith(f"{tiny}: the face is only")
    assert f"warning: {out['warnings'][0]}" in res.stderr.splitlines()
    res = CliRunner().invoke(load_commands(), ["verify", str(astronaut_path),
                                               str(astronaut_path), "--json"])
    assert json.loads(res.stdout)["warnings"] == [] and res.stderr == ""


def test_verify_refuses_a_group_photo_unless_told_to_take_the_largest(astronaut, astronaut_path,
                                                                       tmp_path):
    """The CLI silently compared the largest face of a group photo, where the API (and
    enrolment) refuse it without largest=true / --largest."""
    small = cv2.resize(astronaut, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    group = np.full((astronaut.shape[0], astronaut.shape[1] + small.shape[1], 3), 255, np.uint8)
    group[:, :astronaut.shape[1]] = astronaut
    group[:small.shape[0], astronaut.shape[1]:] = small
    path = tmp_path / "group.png"
    cv2.imwrite(str(path), group)
    args = ["verify", str(astronaut_path), str(path), "--json"]
    res = CliRunner().invoke(load_commands(), args)
    assert res.exit_code == 1 and res.stderr.startswith(f"error: {path}: 2 faces found"), res.output
    res = CliRunner().invoke(load_commands(), [*args, "--largest"])
    assert res.exit_code == 0 and json.loads(res.stdout)["same"], res.output


def test_identify_on_an_empty_gallery_says_why_everyone_is_unknown(astronaut_path, tmp_path):
    db = str(tmp_path / "empty.db")
    assert CliRunner().invoke(load_commands(), ["db", "migrate", "--db", db]).exit_code == 0
    res = CliRunner().invoke(load_commands(), ["identify", str(astronaut_path), "--db", db,
                                               "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert f"warning: {db}: nobody is enrolled yet" in res.stderr
    assert "unknown" in res.stdout

"""Masked enrolment templates, the second backbone, fusion by mask state, per-condition
thresholds and site calibration (issue 13)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from maskface.errors import InputError, MaskfaceError
from maskface.eval.metrics import impostor_threshold
from maskface.gallery import Gallery
from maskface.gallery.thresholds import (
    CONDITIONS,
    calibrate,
    condition,
    model_thresholds,
    operating_threshold,
    store_calibration,
)
from maskface.recognize.base import Embedder, l2_normalize
from maskface.recognize.fusion import FusedEmbedder

DIM = 8


def unit(rng, n=1, dim=DIM):
    return l2_normalize(rng.standard_normal((n, dim)))


def test_conditions_and_impostor_threshold():
    assert condition(False, False) == "unmasked-unmasked"
    assert condition(True, False) == condition(False, True) == "masked-unmasked"
    assert condition(True, True) == "masked-masked"
    imp = np.linspace(0, 1, 1001)  # 1001 impostor scores
    t = impostor_threshold(imp, 1e-2)
    assert (imp >= t).mean() <= 1e-2 and (imp >= t - 2e-3).mean() > 1e-2


def test_gallery_matches_probes_by_condition(tmp_path):
    """A masked probe is scored against masked templates (or a mix), an unmasked one against
    unmasked templates; the threshold is the winning condition's."""
    rng = np.random.default_rng(0)
    face_a, mask_a, face_b = unit(rng, 3)
    with Gallery(tmp_path / "g.db", model="t", dim=DIM) as g:
        a = g.enroll("A", np.stack([face_a, mask_a]), masked=[False, True])
        g.enroll("B", face_b[None], masked=False)
        thr = {"unmasked-unmasked": 0.9, "masked-unmasked": 0.5, "masked-masked": 0.95}
        probe = l2_normalize(mask_a + 0.05 * unit(rng)[0])[None]
        m = g.identify(probe, 0.0, masked=[True], thresholds=thr)[0]
        # a template's score is put on the masked-unmasked scale: 0.45 lower, as its threshold
        assert m.person_id == a.id and m.condition == "masked-masked"
        assert m.threshold == pytest.approx(0.5)
        assert m.score == pytest.approx(float(probe[0] @ mask_a) - 0.45, abs=1e-5)
        # the same vector as an unmasked probe only sees A's unmasked photo
        u = g.identify(probe, 0.0, masked=[False], thresholds=thr)[0]
        assert u.condition == "unmasked-unmasked" and not u.known
        assert u.candidates[0][2] == pytest.approx(float(probe[0] @ face_a), abs=1e-5) or \
            u.candidates[0][0] != a.id
        # mixed rule: w * masked template + (1 - w) * unmasked photo
        w = g.identify(probe, 0.0, masked=[True], template_weight=0.25)[0]
        sa = [c for c in w.candidates if c[0] == a.id][0][2]
        want = 0.25 * float(probe[0] @ mask_a) + 0.75 * float(probe[0] @ face_a)
        assert sa == pytest.approx(want, abs=1e-5)
        # without mask states: the old behaviour, best embedding of each person
        old = g.identify(probe, 0.0)[0]
        assert old.condition is None and old.score == pytest.approx(float(probe[0] @ mask_a),
                                                                    abs=1e-5)
        s, ids = g.search(probe, k=2)
        assert sorted(ids[0].tolist()) == sorted([a.id, g.get("B").id])


def test_masked_probe_accepted_when_either_photo_or_template_passes_its_threshold(tmp_path):
    """The better of photo and template is the one further above its own threshold: a photo
    that passes is not overruled by a template scoring higher in raw cosine but below the
    (higher) masked-masked threshold."""
    basis = np.linalg.qr(np.random.default_rng(1).standard_normal((DIM, 3)))[0].T
    face, mask, rest = basis.astype(np.float32)
    probe = l2_normalize(0.4 * face + 0.6 * mask + 0.69 * rest)[None]
    su, sm = float(probe[0] @ face), float(probe[0] @ mask)
    thr = {"unmasked-unmasked": 0.3, "masked-unmasked": 0.3, "masked-masked": 0.95}
    assert thr["masked-unmasked"] < su < sm < thr["masked-masked"]
    with Gallery(tmp_path / "g.db", model="t", dim=DIM) as g:
        a = g.enroll("A", np.stack([face, mask]), masked=[False, True])
        m = g.identify(probe, 0.9, masked=[True], thresholds=thr)[0]
        assert m.person_id == a.id and m.condition == "masked-unmasked"
        assert m.score == pytest.approx(su, abs=1e-5) and m.threshold == 0.3
    with Gallery(tmp_path / "t.db", model="t", dim=DIM) as g:
        g.enroll("A", mask[None], masked=True)
        m = g.identify(probe, 0.9, masked=[True], thresholds=thr)[0]
        assert not m.known and m.condition == "masked-masked"
        assert m.score == pytest.approx(sm - 0.65, abs=1e-5) and m.threshold == pytest.approx(0.3)


class _Fixed(Embedder):
    """A fake backbone: returns given vectors (keyed by the crop's first pixel)."""

    def __init__(self, table, name):
        self.table, self.name, self.dim = table, name, table.shape[1]

    def _embed(self, faces):
        return self.table[faces[:, 0, 0, 0]]


def test_fused_scores_are_weighted_cosines_by_mask_state():
    rng = np.random.default_rng(1)
    t1, t2 = unit(rng, 4, 8), unit(rng, 4, 16)
    fused = FusedEmbedder(_Fixed(t1, "a"), _Fixed(t2, "b"), 1.0, 0.7)
    faces = np.zeros((4, 112, 112, 3), np.uint8)
    faces[:, 0, 0, 0] = np.arange(4)
    e = fused.embed(faces)
    assert e.shape == (4, 24) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-6)
    s1, s2 = t1[0] @ t1[1], t2[0] @ t2[1]
    assert float(fused.weigh(e[:1], [False])[0] @ e[1]) == pytest.approx(s1, abs=1e-5)
    assert float(fused.weigh(e[:1], [True])[0] @ e[1]) == pytest.approx(0.7 * s1 + 0.3 * s2,
                                                                        abs=1e-5)
    with pytest.raises(InputError):
        FusedEmbedder(_Fixed(t1, "a"), _Fixed(t2, "b"), 1.5, 0.5)


def test_calibration_from_the_gallery_itself(tmp_path):
    """Impostors from other people, genuine from the person's other photos (not a template
    against its own photo); stored thresholds become the operating ones."""
    rng = np.random.default_rng(2)
    with Gallery(tmp_path / "g.db", model="t", dim=64) as g:
        for i in range(12):
            centre = unit(rng, 1, 64)[0]
            photos = l2_normalize(centre + 0.3 * unit(rng, 2, 64))
            masks = l2_normalize(photos + 0.4 * unit(rng, 2, 64))
            g.enroll(f"P{i}", np.concatenate([photos, masks]), masked=[False, False, True, True],
                     sources=["a.jpg", "b.jpg", "synthetic-mask:cloth:a.jpg",
                              "synthetic-mask:cloth:b.jpg"])
        out = calibrate(g, None, far=0.01)
        rep = out["report"]["conditions"]
        # one impostor score per (probe, other person): the best of that person's two photos,
        # as the door scores a person, not one per photo pair
        assert rep["unmasked-unmasked"]["impostor_comparisons"] == 12 * 2 * 11
        photos = [g.embeddings(f"P{i}")[0][:2] for i in range(12)]
        per_person = [float((photos[q] @ a).max()) for p in range(12) for a in photos[p]
                      for q in range(12) if q != p]
        assert out["table"]["unmasked-unmasked"] == round(impostor_threshold(per_person, 0.01), 4)
        # genuine: a vs b and b vs a only
        assert rep["unmasked-unmasked"]["genuine_comparisons"] == 12 * 2
        # masked-unmasked: each template against the other photo, each photo against the
        # other photo's template; never a template against its own photo
        assert rep["masked-unmasked"]["genuine_comparisons"] == 12 * 4
        for c in CONDITIONS:
            assert rep[c]["far_measured"] <= 0.01 and rep[c]["tar"] > 0.5
        # at a target FPIR: each probe, its own person left out, is a stranger at the door
        by_fpir = calibrate(g, None, fpir=0.1)
        strangers = [max(float((photos[q] @ a).max()) for q in range(12) if q != p)
                     for p in range(12) for a in photos[p]]
        e = by_fpir["report"]["conditions"]["unmasked-unmasked"]
        assert e["strangers"] == 24 and by_fpir["table"]["fpir"] == 0.1
        assert e["threshold"] == round(impostor_threshold(strangers, 0.1), 4)
        for c in CONDITIONS:
            assert by_fpir["report"]["conditions"][c]["fpir_measured"] <= 0.1
        # a gallery too large for every probe: a seeded sample of probes, said in the report
        small = calibrate(g, None, far=0.01, max_comparisons=60)
        cond = small["report"]["conditions"]
        assert small["report"]["probes"] == 60 // 12 == cond["masked-unmasked"]["strangers"]
        uu = cond["unmasked-unmasked"]
        assert uu["strangers"] <= 5 and uu["impostor_comparisons"] == 11 * uu["strangers"]
        assert calibrate(g, None, far=0.01, max_comparisons=60) == small  # seeded
        assert out["report"]["probes"] == 48  # every embedding when it fits
        store_calibration(g, out["table"])
        assert operating_threshold(g, True, True) == out["table"]["masked-masked"]
        assert operating_threshold(g, False, True) == out["table"]["masked-unmasked"]


def test_a_small_gallery_never_loosens_the_models_thresholds(tmp_path):
    """Too few impostor comparisons to resolve the target FAR: the gallery's estimate (above
    every impostor seen) is biased low, so the model's stricter threshold is kept and said."""
    rng = np.random.default_rng(4)
    model = model_thresholds("sface")
    with Gallery(tmp_path / "g.db", model="sface", dim=128) as g:
        for i in range(4):
            photos = unit(rng, 2, 128)
            g.enroll(f"P{i}", np.concatenate([photos, unit(rng, 2, 128)]),
                     masked=[False, False, True, True],
                     sources=["a.jpg", "b.jpg", "synthetic-mask:x:a.jpg", "synthetic-mask:x:b.jpg"])
        out = calibrate(g, None, far=1e-3)
        for c in CONDITIONS:
            e = out["report"]["conditions"][c]
            assert not e["resolvable"] and e["site_threshold"] < model[c]
            assert e["source"] == "model" and out["table"][c] == e["threshold"] == model[c]
        # a rate these comparisons do resolve: the site's own threshold, even if looser
        loose = calibrate(g, None, far=0.05)["report"]["conditions"]["masked-unmasked"]
        assert loose["resolvable"] and loose["source"] == "site"
        assert loose["threshold"] == loose["site_threshold"] < model["masked-unmasked"]


def test_ids_beyond_sqlite_range_in_new_gallery_calls(tmp_path):
    with Gallery(tmp_path / "g.db", model="t", dim=DIM) as g:
        g.enroll("A", unit(np.random.default_rng(3)))
        from maskface.gallery import UnknownPersonError

        for call in (g.embedding_rows, lambda p: g.replace_embeddings(p, "x")):
            with pytest.raises(UnknownPersonError):
                call(2**64)


@pytest.fixture(scope="module")
def reid():
    from maskface.recognize import Reid0095Embedder

    return Reid0095Embedder()


def test_reid_backbone_tells_people_apart(reid, astronaut):
    """The converted Intel model (own template from the ArcFace crop): a face and its mirror
    are far closer than two different faces; 256-d unit vectors."""
    from maskface.align import align_face
    from maskface.detect import create_detector

    det = create_detector("yunet").detect(astronaut)
    crop = align_face(astronaut, det.landmarks[0])
    mirror = np.ascontiguousarray(crop[:, ::-1])
    other = np.ascontiguousarray(np.rot90(crop, 2))
    e = reid.embed(np.stack([crop, mirror, other]))
    assert e.shape == (3, 256) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    assert e[0] @ e[1] > 0.6 and e[0] @ e[1] > e[0] @ e[2] + 0.3


def test_masked_templates_are_seeded_masked_copies(astronaut):
    pytest.importorskip("mediapipe")
    from maskface.detect import create_detector
    from maskface.recognize.templates import N_TEMPLATES, masked_copies
    from maskface.results import Face

    det = create_detector("yunet").detect(astronaut)
    face = Face(box=det.boxes[0], score=1.0, landmarks=det.landmarks[0])
    copies = masked_copies(astronaut, face)
    again = masked_copies(astronaut, face)
    assert [k for k, _ in copies] == ["surgical", "cloth", "kn95"][:N_TEMPLATES]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(copies, again))
    x1, y1, x2, y2 = face.box.astype(int)
    lower = slice((y1 + y2) // 2 + 5, y2), slice(x1, x2)
    for _, img in copies:  # the mouth region changed, the eyes did not
        assert np.abs(img[lower].astype(int) - astronaut[lower]).mean() > 10
        assert np.array_equal(img[: y1], astronaut[: y1])


def test_shipped_thresholds_and_fusion_file_are_consistent():
    from maskface.recognize import fusion_config

    cfg = fusion_config()
    assert 0 <= cfg["weight_unmasked"] <= 1 and 0 <= cfg["weight_masked"] <= 1
    from maskface.gallery import thresholds as th

    if th._MODEL_FILE.is_file():
        for model, table in json.loads(th._MODEL_FILE.read_text()).items():
            assert set(CONDITIONS) <= set(table) and table["far"] > 0, model


@pytest.mark.data
def test_cli_templates_remask_and_calibrate(tmp_path, data_dir, astronaut_path):
    """Enrolment stores masked templates beside each unmasked photo; remask makes them again
    (replacing, not adding); calibrate stores per-condition thresholds and writes a ROC
    report; a masked probe is identified under its condition's threshold."""
    pytest.importorskip("mediapipe")
    from typer.testing import CliRunner

    from maskface.cli import load_commands
    from maskface.synth import apply_mask, random_style

    def invoke(*args):
        return CliRunner().invoke(load_commands(), [str(a) for a in args],
                                  catch_exceptions=False)

    db = tmp_path / "g.db"
    people = {"Abdullah_Gul": (1, 6), "Adrien_Brody": (3, 5), "Abel_Pacheco": (1, 2)}
    for name, idx in people.items():
        photos = [data_dir / "lfw/images" / name / f"{name}_{i:04d}.jpg" for i in idx]
        res = invoke("enroll", name, *photos, "--db", db, "--largest", "--templates", 2)
        assert res.exit_code == 0 and "+ 4 synthetic masked templates" in res.output, res.output
    with Gallery(db) as g:
        before = {p.name: (p.n_embeddings, p.n_masked, p.n_templates) for p in g.people()}
    assert set(before.values()) == {(6, 4, 4)}
    res = invoke("people", "remask", "Adrien_Brody", "--db", db, "--templates", 2)
    assert res.exit_code == 0, res.output
    assert "4 masked templates made from 2 photos (4 old ones replaced)" in res.output
    # a photo no longer on disk keeps its templates (they are all the person has; remask used
    # to delete them and make none, as it did for everyone enrolled through the API)
    gone = tmp_path / "gone.jpg"
    shutil.copy(astronaut_path, gone)
    assert invoke("enroll", "Astro", gone, "--db", db, "--templates", 2).exit_code == 0
    gone.unlink()
    res = invoke("people", "remask", "--db", db, "--templates", 2)
    assert res.exit_code == 0, res.output
    assert "Astro: 0 masked templates made from 0 photos (0 old ones replaced, 2 of photos " \
           "not remade kept)" in res.output
    assert "1 enrolment photos no longer on disk (their 2 templates kept)" in res.output
    with Gallery(db) as g:
        assert g.get("Astro").n_templates == 2 and g.get("Abdullah_Gul").n_templates == 4
        g.delete("Astro")
    # another face at an enrolment photo's path (or, for a relative path, in the folder remask
    # runs in) must not become the person's templates: a masked stranger would be let in
    # as them. Paths are stored absolute, and the photo must still show the enrolled face.
    photo = tmp_path / "mine.jpg"
    shutil.copy(data_dir / "lfw/images/Aaron_Sorkin/Aaron_Sorkin_0001.jpg", photo)
    assert invoke("enroll", "Mine", photo, "--db", db, "--templates", 2).exit_code == 0
    with Gallery(db) as g:
        assert str(photo.resolve()) in g.embedding_rows("Mine")[2]
    shutil.copy(data_dir / "lfw/images/Adrien_Brody/Adrien_Brody_0003.jpg", photo)
    res = invoke("people", "remask", "Mine", "--db", db, "--templates", 2)
    assert res.exit_code == 0 and "no longer shows the face enrolled from it" in res.output
    assert "0 masked templates made from 0 photos (0 old ones replaced, 2 of photos not " \
           "remade kept)" in res.output and "1 showing another face" in res.output
    with Gallery(db) as g:
        assert g.get("Mine").n_templates == 2
        g.delete("Mine")
    # --templates 0 means none: the templates of the photos remade are removed
    res = invoke("people", "remask", "Abel_Pacheco", "--db", db, "--templates", 0)
    assert res.exit_code == 0 and "0 masked templates made from 2 photos (4 old ones " \
        "replaced)" in res.output, res.output
    with Gallery(db) as g:
        assert g.get("Abel_Pacheco").n_templates == 0
    assert invoke("people", "remask", "Abel_Pacheco", "--db", db, "--templates", 2
                  ).exit_code == 0
    res = invoke("people", "remask", "99999999999999999999999", "--db", db)
    assert res.exit_code == 1 and "no enrolled person" in res.output
    with Gallery(db) as g:
        assert g.get("Adrien_Brody").n_embeddings == 6

    report = tmp_path / "cal.json"
    res = invoke("calibrate", "--db", db, "--far", 0.01, "--fpir", 0.1, "--report", report)
    assert res.exit_code == 1 and "--far or --fpir, not both" in res.output  # fpir won
    res = invoke("calibrate", "--db", db, "--far", 0.01, "--report", report)
    assert res.exit_code == 0, res.output
    rep = json.loads(report.read_text())
    assert rep["stored"] and report.with_suffix(".png").is_file()
    assert {"unmasked-unmasked", "masked-unmasked", "masked-masked"} <= set(rep["conditions"])
    with Gallery(db) as g:
        stored = json.loads(g.get_meta("thresholds"))
        assert stored["masked-masked"] == rep["conditions"]["masked-masked"]["threshold"]

    # a masked photo of Gul, not enrolled: found under the masked condition's threshold
    from maskface.detect import create_detector
    from maskface.io import load_image
    from maskface.recognize import single_face

    img = load_image(data_dir / "lfw/images/Abdullah_Gul/Abdullah_Gul_0007.jpg")
    face = single_face(create_detector("yunet"), img, "gul", pick_largest=True).face
    masked = apply_mask(img, face, random_style(np.random.default_rng(5)))
    probe = tmp_path / "gul_masked.jpg"
    import cv2

    cv2.imwrite(str(probe), masked)
    out = tmp_path / "out"
    res = invoke("identify", probe, "--db", db, "--out", out)
    assert res.exit_code == 0, res.output
    record = json.loads((out / "gul_masked.json").read_text())
    ident = record["faces"][0]["identity"]
    # the file lists the thresholds in force (the site's calibration here), the line says
    # which one judged the face
    assert record["thresholds"]["source"] == "site calibration"
    for c in ("unmasked-unmasked", "masked-unmasked", "masked-masked"):
        assert record["thresholds"][c] == pytest.approx(stored[c], abs=1e-4)
    assert f"threshold {ident['threshold']:.3f}, {ident['condition']})" in res.stdout
    if json.loads((out / "gul_masked.json").read_text())["faces"][0]["mask"]["label"] != \
            "without_mask":
        assert ident["condition"] in ("masked-masked", "masked-unmasked")
        # a masked probe is judged on the masked-unmasked scale (a template's score less the
        # template offset), whichever kind of template matched
        assert ident["threshold"] == pytest.approx(stored["masked-unmasked"], abs=1e-4)


def test_converter_reproduces_the_shipped_reid_onnx(tmp_path):
    """scripts/convert_reid_ir.py turns the staged IR into exactly the shipped file."""
    pytest.importorskip("onnx")
    import hashlib
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    ir = root.parent / "shared" / "models" / "face-reidentification-retail-0095"
    if not ir.is_dir():
        pytest.skip(f"staged IR not found at {ir}")
    spec = importlib.util.spec_from_file_location("convert_reid_ir",
                                                  root / "scripts" / "convert_reid_ir.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import onnx

    out = tmp_path / "reid.onnx"
    onnx.save(mod.convert(ir), out)
    from maskface.models import MODELS

    assert hashlib.sha256(out.read_bytes()).hexdigest() == MODELS["face_reid_0095"].sha256


def test_replacing_templates_is_all_or_nothing(tmp_path):
    """remask's replacement of a person's synthetic templates is one transaction: a failed
    insert (vectors of another size) keeps the old templates; a good one swaps them."""
    rng = np.random.default_rng(5)
    with Gallery(tmp_path / "g.db", model="t", dim=DIM) as g:
        g.enroll("A", unit(rng, 1), sources=["a.jpg"])
        old = ["synthetic-mask:a.jpg#0", "synthetic-mask:a.jpg#1"]
        g.add_embeddings("A", unit(rng, 2), True, old)
        bad = np.ones((3, DIM + 1), np.float32)
        with pytest.raises(MaskfaceError):
            g.replace_embeddings("A", "synthetic-mask:", bad, True, ["synthetic-mask:x"] * 3)
        assert g.embedding_rows("A")[2] == ["a.jpg", *old]
        assert g.replace_embeddings("A", "synthetic-mask:", unit(rng, 3), True,
                                    [f"synthetic-mask:b#{k}" for k in range(3)]) == 2
        assert g.embedding_rows("A")[2] == ["a.jpg"] + [f"synthetic-mask:b#{k}" for k in range(3)]


def test_masked_alignment_export_matches_its_formula(tmp_path):
    """The exported graph is reid0095's feature map times the fitted map, plus the template."""
    pytest.importorskip("onnx")
    from maskface.align import ARCFACE_TEMPLATE
    from maskface.recognize import MaskedRealigner
    from maskface.train.recog_model import (
        REID_FEATURE_DIM,
        export_masked_alignment,
        extract_reid_features,
    )

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (3, 112, 112, 3), dtype=np.uint8)
    w = rng.standard_normal((REID_FEATURE_DIM, 10)).astype(np.float32) * 1e-3
    b = rng.standard_normal(10).astype(np.float32)
    path = export_masked_alignment(w, b, tmp_path / "a.onnx", {"penalty": "1"})
    feats, _ = extract_reid_features(crops, progress=False)
    want = ARCFACE_TEMPLATE + (feats.astype(np.float32) @ w + b).reshape(-1, 5, 2)
    np.testing.assert_allclose(MaskedRealigner(path).landmarks(crops), want, atol=2e-2)


def test_realigned_embedder_touches_masked_faces_only(astronaut):
    from maskface.recognize import MaskedRealigner, RealignedEmbedder, create_embedder
    from maskface.recognize.faces import portrait_detector

    plain = create_embedder("fused", realign=False)
    emb = RealignedEmbedder(plain, MaskedRealigner())
    face = align_one(portrait_detector(), astronaut)
    both = np.stack([face, face])
    assert emb.name == plain.name and emb.dim == plain.dim and emb.parts == plain.parts
    out, ref = emb.embed(both, [False, True]), plain.embed(both, [False, True])
    assert out[0] @ ref[0] > 0.9999            # unmasked: exactly the embedder's vector
    assert 0.5 < out[1] @ ref[1] < 0.9999      # masked: the re-aligned crop's
    np.testing.assert_array_equal(emb.weigh(out, [True, True]), plain.weigh(out, [True, True]))


def test_mirror_mean_of_masked_faces(astronaut):
    """A masked face's vector is the mean of its crop's and its mirror image's (each re-aligned),
    each backbone's part of a fused vector staying unit length so the fusion weights hold."""
    from maskface.recognize import MaskedRealigner, RealignedEmbedder, create_embedder
    from maskface.recognize.faces import portrait_detector

    plain = create_embedder("fused", realign=False)
    realigner = MaskedRealigner()
    face = align_one(portrait_detector(), astronaut)
    mirrored = RealignedEmbedder(plain, realigner).embed(np.stack([face, face]), [False, True])
    single = RealignedEmbedder(plain, realigner, mirror=False)
    one = single.embed(face[None], [True])[0]
    twin = single.embed(np.ascontiguousarray(face[None, :, ::-1]), [True])[0]
    d = plain.first.dim
    for part in (slice(0, d), slice(d, None)):
        want = one[part] + twin[part]
        np.testing.assert_allclose(mirrored[1, part], want / np.linalg.norm(want) / np.sqrt(2),
                                   atol=1e-5)
    assert one @ twin < 0.999                   # the mirror image is a second, different view
    np.testing.assert_allclose(mirrored[0], plain.embed(face[None], [False])[0], atol=1e-6)


def align_one(detector, image):
    from maskface.align import align_faces
    from maskface.recognize import central_face

    return align_faces(image, central_face(detector, image).face.landmarks[None])[0]


def test_masked_alignment_finds_the_landmarks_a_mask_hides(data_dir):
    """On LFW photos the model never saw, masked by maskface.synth: the landmarks the model
    gives for the masked face's crop are nearer the unmasked face's true ones than the
    detector's (the crop's own alignment)."""
    pytest.importorskip("mediapipe")
    from maskface.align import ARCFACE_TEMPLATE, alignment_matrix
    from maskface.io import load_image
    from maskface.recognize import MaskedRealigner, central_face
    from maskface.recognize.faces import portrait_detector
    from maskface.synth import apply_mask, random_style

    det, model = portrait_detector(), MaskedRealigner()
    names = sorted(p.name for p in (data_dir / "lfw/images").iterdir())[:40:2]
    crops, truth = [], []
    for k, name in enumerate(names):
        img = load_image(next((data_dir / "lfw/images" / name).iterdir()))
        face = central_face(det, img).face
        try:
            masked = apply_mask(img, face, random_style(np.random.default_rng(k)))
        except MaskfaceError:
            continue
        lm = central_face(det, masked).face.landmarks
        a = alignment_matrix(lm)
        crops.append(align_one(det, masked))
        truth.append(face.landmarks @ a[:, :2].T + a[:, 2])
    assert len(crops) >= 15
    truth = np.stack(truth)
    before = np.linalg.norm(truth - ARCFACE_TEMPLATE, axis=2).mean()
    after = np.linalg.norm(truth - model.landmarks(np.stack(crops)), axis=2).mean()
    assert after < 0.85 * before, (before, after)


def test_cli_train_alignment_end_to_end(tmp_path, data_dir):
    """``maskface train alignment`` on a small identity tree: crops, masks, features, the
    ridge fit, the exported model (loadable, five finite landmarks per crop) and its card."""
    pytest.importorskip("onnx")
    pytest.importorskip("mediapipe")
    import shutil

    from typer.testing import CliRunner

    from maskface.cli import load_commands
    from maskface.recognize import MaskedRealigner

    faces = tmp_path / "faces"
    people = [p for p in sorted((data_dir / "lfw/images").iterdir())
              if len(list(p.iterdir())) >= 3][:8]
    for person in people:
        (faces / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:3]:
            shutil.copy(photo, faces / person.name / photo.name)
    out = tmp_path / "out"
    res = CliRunner().invoke(load_commands(), [
        "train", "alignment", "--faces", str(faces), "--cache", str(tmp_path / "cache"),
        "--out", str(out), "--holdout", "2", "--val", "2"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    card = json.loads((out / "card.json").read_text())
    assert card["penalty"] in (1e4, 3e4, 1e5, 3e5, 1e6)
    assert card["data"]["train_crops"] > 0 and card["data"]["val_crops"] > 0
    assert set(card["val_pair_accuracy"]) == {"sface_masked_detector", "sface_masked_realigned",
                                              "reid0095_detector", "reid0095_realigned"}
    crops = np.load(next((tmp_path / "cache").glob("crops_masked_*.npz")))["crops"][:4]
    lm = MaskedRealigner(out / "masked_alignment.onnx").landmarks(crops)
    assert lm.shape == (4, 5, 2) and np.isfinite(lm).all()


def test_realigner_keeps_a_crop_whose_correction_is_implausible(monkeypatch, astronaut):
    """A predicted correction within bounds re-warps the crop; one that would rotate, rescale or
    move the face far (the model out of its depth) leaves the detector's crop as it was."""
    from maskface.align import ARCFACE_TEMPLATE
    from maskface.recognize import MaskedRealigner
    from maskface.recognize.faces import portrait_detector

    face = align_one(portrait_detector(), astronaut)
    crops = np.stack([face, face, face])
    angle = np.radians(35)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = ARCFACE_TEMPLATE.mean(0)
    predicted = np.stack([ARCFACE_TEMPLATE + [2.0, 1.0],             # a small shift: applied
                          (ARCFACE_TEMPLATE - centre) @ rot.T + centre,  # 35 degrees: refused
                          ARCFACE_TEMPLATE + [30.0, 0.0]])          # 30 px: refused
    model = MaskedRealigner()
    monkeypatch.setattr(model, "landmarks", lambda c: predicted[: len(c)])
    out = model(crops)
    assert not np.array_equal(out[0], face)
    np.testing.assert_array_equal(out[1], face)
    np.testing.assert_array_equal(out[2], face)


def test_templates_made_before_realignment_are_pointed_out(tmp_path, data_dir, caplog):
    """Templates carry how they were embedded; ones made on the detector's landmarks (before
    re-alignment) are counted, named by ``people list`` and the recogniser, and gone after
    ``people remask``."""
    pytest.importorskip("mediapipe")
    import logging
    import sqlite3

    from typer.testing import CliRunner

    from maskface.cli import load_commands
    from maskface.recognize import Recognizer, create_embedder

    def invoke(*args):
        return CliRunner().invoke(load_commands(), [str(a) for a in args],
                                  catch_exceptions=False)

    db = tmp_path / "g.db"
    photo = data_dir / "lfw/images/Abdullah_Gul/Abdullah_Gul_0001.jpg"
    assert invoke("enroll", "Gul", photo, "--db", db, "--templates", 2).exit_code == 0
    with Gallery(db) as g:
        assert g.templates_not_realigned() == 0
    assert "remask" not in invoke("people", "list", "--db", db).output
    with sqlite3.connect(db) as conn:  # as a gallery enrolled before re-alignment has them
        conn.execute("UPDATE embeddings SET source = replace(source, '/realigned', '')")
    with Gallery(db) as g:
        assert g.templates_not_realigned() == 2
        with caplog.at_level(logging.WARNING, logger="maskface.recognize.recognizer"):
            Recognizer(create_embedder("sface_masked"), g)
        assert "2 masked templates" in caplog.text
    assert "note: 2 masked templates" in invoke("people", "list", "--db", db).output
    assert invoke("people", "remask", "Gul", "--db", db, "--templates", 2).exit_code == 0
    with Gallery(db) as g:
        assert g.templates_not_realigned() == 0

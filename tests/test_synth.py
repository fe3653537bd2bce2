"""maskface synth: mask geometry on real faces, determinism, skips, templates, CLI."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskface.synth import MaskStyle, TemplateSet, apply_mask
from maskface.synth import landmarks as L

pytest.importorskip("mediapipe", reason="dense landmarks need MediaPipe (make install-all)")

#: one of each drawn type, in colours that differ from skin
STYLES = (MaskStyle("surgical", "blue"), MaskStyle("n95", "white"), MaskStyle("kn95", "black"),
          MaskStyle("cloth", "navy", "dots"))


@pytest.fixture(scope="module")
def landmarker():
    from maskface.synth import FaceLandmarker

    with FaceLandmarker() as lm:
        yield lm


@pytest.fixture(scope="module")
def detector():
    from maskface.detect import create_detector

    return create_detector("yunet")


@pytest.fixture(scope="module")
def vgg_faces(data_dir, detector, landmarker):
    """8 photos of 8 identities from the VGGFace2 sample, with their dense landmarks."""
    root = data_dir / "faces" / "vggface2-sample"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    out = []
    for ident in sorted(p for p in root.iterdir() if p.is_dir())[::60][:8]:
        path = sorted(ident.glob("*.jpg"))[0]
        image = cv2.imread(str(path))
        det = detector.detect(image)
        if len(det) == 0:
            continue
        lm = landmarker.landmarks(image, det.boxes[int(np.argmax(det.scores))])
        if lm is not None:
            out.append((path, image, lm))
    assert len(out) >= 6, "the landmarker should find most faces of the sample"
    return out


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.any(before != after, axis=2)


def _down_coordinate(lm, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Position along the face's down axis (perpendicular to the eye line), in pixels."""
    c, s = np.cos(-lm.roll), np.sin(-lm.roll)
    return xs * s + ys * c


def _at(mask: np.ndarray, pt: np.ndarray) -> bool:
    x, y = np.round(pt).astype(int)
    return bool(mask[y, x])


def _check_correct_mask(image, lm, style):
    out = apply_mask(image, lm, style)
    changed = _changed(image, out)
    ys, xs = np.nonzero(changed)
    assert len(xs) > 0.05 * changed.size / 4, f"{style.name}: hardly anything was drawn"
    # Inside the face region: the mesh's box, grown a little for the ear loops and the fabric
    # that wraps under the chin.
    x1, y1, x2, y2 = lm.box
    w, h = x2 - x1, y2 - y1
    assert xs.min() >= x1 - 0.15 * w and xs.max() <= x2 + 0.15 * w, style.name
    assert ys.max() <= y2 + 0.12 * h, style.name
    # Entirely below the eyes: nothing above the lower eyelids (along the face's own axes).
    eyes_low = _down_coordinate(lm, *lm.points[[L.EYE_BOTTOM_L, L.EYE_BOTTOM_R]].T).max()
    assert _down_coordinate(lm, xs, ys).min() > eyes_low, style.name
    assert not any(_at(changed, lm.points[i]) for i in L.EYE_L + L.EYE_R), style.name
    # Covers the mouth (both corners and the lips) and the nose tip.
    for i in (L.MOUTH_L, L.MOUTH_R, L.UPPER_LIP_TOP, L.LOWER_LIP_BOTTOM, L.NOSE_TIP):
        assert _at(changed, lm.points[i]), f"{style.name}: landmark {i} not covered"


def test_correct_masks_on_real_faces(vgg_faces):
    for k, (_path, image, lm) in enumerate(vgg_faces):
        _check_correct_mask(image, lm, STYLES[k % len(STYLES)])


def test_nose_exposed_keeps_nose_tip_and_covers_mouth(vgg_faces):
    for _path, image, lm in vgg_faces:
        out = apply_mask(image, lm, MaskStyle("surgical", "green", wear="nose_exposed"))
        changed = _changed(image, out)
        assert not _at(changed, lm.points[L.NOSE_TIP]), "nose tip must stay visible"
        for i in (L.MOUTH_L, L.MOUTH_R, L.LOWER_LIP_BOTTOM):
            assert _at(changed, lm.points[i]), f"landmark {i} should be covered"
        # The whole nose ridge, from between the eyes down to the tip, stays visible.
        top, tip = lm.points[L.NOSE_BRIDGE_TOP], lm.points[L.NOSE_TIP]
        for t in np.linspace(0, 1, 12):
            assert not _at(changed, top + (tip - top) * t)


def test_chin_only_leaves_mouth_visible(vgg_faces):
    for _path, image, lm in vgg_faces:
        out = apply_mask(image, lm, MaskStyle("cloth", "black", wear="chin_only"))
        changed = _changed(image, out)
        for i in (L.NOSE_TIP, L.MOUTH_L, L.MOUTH_R, L.UPPER_LIP_TOP):
            assert not _at(changed, lm.points[i]), f"landmark {i} should stay visible"
        assert changed.sum() > 0
        assert _at(changed, lm.points[L.CHIN])


def test_procedural_masks_on_astronaut(astronaut, detector, landmarker):
    """No shared data needed: every drawn type on the built-in photo."""
    det = detector.detect(astronaut)
    lm = landmarker.landmarks(astronaut, det.boxes[0])
    assert lm is not None
    for style in STYLES + (MaskStyle("cloth", "beige", "check", accent="navy"),
                           MaskStyle("cloth", "red", "stripes")):
        _check_correct_mask(astronaut, lm, style)


def test_apply_mask_takes_a_detected_face(astronaut, detector):
    from maskface.results import Face

    det = detector.detect(astronaut)
    face = Face(det.boxes[0], float(det.scores[0]), det.landmarks[0])
    out = apply_mask(astronaut, face, MaskStyle("surgical", "blue"))
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    assert _changed(astronaut, out).sum() > 1000
    # Seeded details: the same style gives the same pixels, another seed other pixels.
    assert np.array_equal(out, apply_mask(astronaut, face, MaskStyle("surgical", "blue")))
    other = apply_mask(astronaut, face, MaskStyle("surgical", "blue", seed=1))
    assert not np.array_equal(out, other)


def test_templates_mode(data_dir, astronaut, detector, landmarker):
    folder = data_dir / "mask-templates" / "masktheface"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    templates = TemplateSet(folder)
    assert {"surgical", "N95", "KN95", "cloth"} <= set(templates.frontal_names)
    assert templates.view("surgical", -0.6).name == "surgical_left"
    assert templates.view("surgical", 0.6).name == "surgical_right"
    det = detector.detect(astronaut)
    lm = landmarker.landmarks(astronaut, det.boxes[0])
    for name in ("surgical_blue", "KN95"):
        out = apply_mask(astronaut, lm, MaskStyle("surgical", "blue", template=name),
                         templates=templates)
        changed = _changed(astronaut, out)
        for i in (L.MOUTH_L, L.MOUTH_R, L.NOSE_TIP):
            assert _at(changed, lm.points[i]), f"template {name}: landmark {i} not covered"
        ys, xs = np.nonzero(changed)
        x1, y1, x2, y2 = lm.box
        w = x2 - x1
        assert xs.min() >= x1 - 0.2 * w and xs.max() <= x2 + 0.2 * w


def test_template_folder_without_cfg_is_a_user_error(tmp_path):
    from maskface.errors import InputError

    with pytest.raises(InputError, match="masks.cfg"):
        TemplateSet(tmp_path)


def _small_tree(tmp_path: Path, astronaut_path: Path, vgg: list | None) -> Path:
    """A folder with two identities and one photo without a face."""
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    shutil.copy(astronaut_path, src / "a" / "astro.jpg")
    small = cv2.resize(cv2.imread(str(astronaut_path)), (200, 200))
    cv2.imwrite(str(src / "b" / "astro_small.png"), small)
    rng = np.random.default_rng(0)
    blank = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (0, 0), 8)
    cv2.imwrite(str(src / "b" / "no_face.jpg"), blank)
    return src


def test_synthesize_folder_is_deterministic_and_reports_skips(tmp_path, astronaut_path):
    from maskface.synth.batch import SynthConfig, read_manifest, synthesize

    src = _small_tree(tmp_path, astronaut_path, None)
    cfg = SynthConfig(per_image=2, incorrect_rate=0.5, seed=7)
    s1 = synthesize(src, tmp_path / "o1", cfg)
    synthesize(src, tmp_path / "o2", cfg)
    synthesize(src, tmp_path / "o3", SynthConfig(per_image=2, incorrect_rate=0.5, seed=8))
    assert s1.inputs == 3 and s1.outputs == 4
    assert [Path(p).name for p, _ in s1.skipped] == ["no_face.jpg"]
    files = sorted(p.relative_to(tmp_path / "o1") for p in (tmp_path / "o1").rglob("*.*"))
    assert Path("a/astro_0.jpg") in files and Path("b/astro_small_1.png") in files
    for rel in files:  # same seed: byte-identical images, manifest and skip list
        assert (tmp_path / "o1" / rel).read_bytes() == (tmp_path / "o2" / rel).read_bytes()
    assert (tmp_path / "o1" / "a/astro_0.jpg").read_bytes() != \
        (tmp_path / "o3" / "a/astro_0.jpg").read_bytes()
    rows = read_manifest(tmp_path / "o1" / "manifest.csv")
    assert len(rows) == 4 and {r.identity for r in rows} == {"a", "b"}
    assert all(r.worn_correctly == (r.wear == "correct") for r in rows)
    with open(tmp_path / "o1" / "skipped.csv") as f:
        skipped = list(csv.DictReader(f))
    assert skipped[0]["reason"] == "no face detected"


def test_output_names_never_clash():
    from maskface.synth.batch import output_bases

    rels = [Path("x.JPG"), Path("x.jpg"), Path("x-2.jpg"), Path("a/b_c.jpg"), Path("a_b/c.jpg")]
    assert output_bases(rels, 1, flat=False) == [
        Path("x.jpg"), Path("x-2.jpg"), Path("x-2-2.jpg"), Path("a/b_c.jpg"), Path("a_b/c.jpg")]
    assert output_bases(rels, 2, flat=True)[3:] == [Path("a_b_c.jpg"), Path("a_b_c-2.jpg")]


@pytest.mark.parametrize("by_class", [False, True])
def test_sources_whose_names_clash_get_files_of_their_own(tmp_path, astronaut_path, by_class):
    """x.jpg and x.JPG (suffixes are lower-cased), and a/b_c.jpg and a_b/c.jpg (joined by
    --by-class), each get their own file, and each manifest row names its own source's."""
    from maskface.synth.batch import SynthConfig, read_manifest, synthesize

    src = tmp_path / "in"
    image = cv2.imread(str(astronaut_path))
    for i, rel in enumerate(["x.jpg", "x.JPG", "a/b_c.jpg", "a_b/c.jpg"]):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(src / rel), cv2.resize(image, (300 + 20 * i, 300 + 20 * i)))
    out = tmp_path / "out"
    synthesize(src, out, SynthConfig(seed=2, by_class=by_class))
    rows = read_manifest(out / "manifest.csv")
    assert len(rows) == 4 and len({r.output for r in rows}) == 4
    assert len([p for p in out.rglob("*.jpg")]) == 4
    for r in rows:  # the output's size is its own source's
        assert cv2.imread(str(out / r.output)).shape == cv2.imread(r.source).shape


def test_workers_give_the_same_bytes(tmp_path, astronaut_path):
    from maskface.synth.batch import SynthConfig, synthesize

    src = _small_tree(tmp_path, astronaut_path, None)
    cfg = SynthConfig(seed=3, by_class=True, incorrect_rate=0.5, per_image=2)
    synthesize(src, tmp_path / "one", cfg, workers=1)
    synthesize(src, tmp_path / "two", cfg, workers=2)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    assert {f.parts[0] for f in files if f.suffix != ".csv"} <= {"with_mask", "mask_incorrect"}
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()


def test_cli_synth_with_preview(tmp_path, astronaut_path):
    from typer.testing import CliRunner

    import maskface.cli.synth  # noqa: F401 - registers the command
    from maskface.cli.apps import app

    src = _small_tree(tmp_path, astronaut_path, None)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["synth", str(src), str(out), "--types", "cloth,kn95",
                                      "--seed", "1", "--preview", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert "2 masked images from 2 of 3 photos" in result.output
    assert "no_face.jpg: no face detected" in result.output
    sheet = cv2.imread(str(tmp_path / "p.png"))
    assert sheet is not None and sheet.shape[0] > 100
    with open(out / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["mask_type"] for r in rows} <= {"cloth", "kn95"}
    bad = CliRunner().invoke(app, ["synth", str(src), str(out), "--types", "gas"])
    assert bad.exit_code == 1 and "unknown mask type" in bad.output


@pytest.mark.parametrize(("args", "message"), [
    (["--incorrect-rate", "nan"], "--incorrect-rate must be a number between 0 and 1, not nan"),
    (["--preview", "{tmp}"], "is a folder; give an image file name"),
    (["--preview", "{tmp}/sheet"], "give an image file name ending in .jpg"),
    (["--preview", "{tmp}/afile/p.png"], "afile: is a file, so it cannot be the folder"),
    (["--out", "{tmp}/afile"], "afile: exists and is not a folder; give OUT a folder"),
])
def test_cli_synth_refuses_bad_options_before_any_work(tmp_path, astronaut_path, args,
                                                       message):
    from typer.testing import CliRunner

    import maskface.cli.synth  # noqa: F401 - registers the command
    from maskface.cli.apps import app

    src = _small_tree(tmp_path, astronaut_path, None)
    (tmp_path / "afile").write_text("kept")
    args = [a.format(tmp=tmp_path) for a in args]
    out = str(tmp_path / "out")
    if args[0] == "--out":
        out, args = args[1], []
    result = CliRunner().invoke(app, ["synth", str(src), out, *args])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert message in result.output
    assert not (tmp_path / "out").exists() and (tmp_path / "afile").read_text() == "kept"


def test_rerun_into_the_same_folder_replaces_the_previous_run(tmp_path, astronaut_path):
    """The images an earlier run's manifest lists are deleted first (none is left in a second
    class or as a _1 copy); other files stay, and a manifest.csv that is not synth's is kept
    and refused."""
    from typer.testing import CliRunner

    import maskface.cli.synth  # noqa: F401 - registers the command
    from maskface.cli.apps import app
    from maskface.errors import InputError
    from maskface.synth.batch import SynthConfig, read_manifest, synthesize

    src = _small_tree(tmp_path, astronaut_path, None)
    out = tmp_path / "out"
    synthesize(src, out, SynthConfig(by_class=True, face_crop=True, incorrect_rate=1,
                                     per_image=2))
    (out / "mask_incorrect" / "mine.txt").write_text("not synth's")
    result = CliRunner().invoke(app, ["synth", str(src), str(out), "--by-class"])
    assert result.exit_code == 0, result.output
    assert f"removed the 6 images of the previous run in {out}" in result.output
    left = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert left == {r.output for r in read_manifest(out / "manifest.csv")} | {
        "manifest.csv", "skipped.csv", "mask_incorrect/mine.txt"}
    assert not (out / "without_mask").exists()  # emptied: not a class any more

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.csv").write_text("id,label\n1,x\n")
    with pytest.raises(InputError, match="not a manifest of maskface synth"):
        synthesize(src, tmp_path / "other", SynthConfig())
    assert (tmp_path / "other" / "manifest.csv").read_text() == "id,label\n1,x\n"


def test_eval_synth_writes_report(tmp_path, astronaut_path):
    from maskface.classify import MaskClassifier
    from maskface.errors import ModelError
    from maskface.synth.batch import SynthConfig, synthesize
    from maskface.synth.check import check_synth

    try:
        MaskClassifier()
    except ModelError as exc:
        pytest.skip(f"no shipped mask classifier yet: {exc}")
    src = _small_tree(tmp_path, astronaut_path, None)
    synthesize(src, tmp_path / "out", SynthConfig(seed=0, per_image=2, incorrect_rate=0.5))
    report = check_synth(tmp_path / "out", limit=None, exclude_identities={"b"})
    assert report["images_checked"] == 2 and report["excluded_images_of_excluded_identities"] == 2
    by_wear = report["by_wear"]
    assert sum(e["images"] for e in by_wear.values()) == 2
    # The masked astronaut must still be found by the project's own detector.
    assert all(e["detection_rate"] == 1.0 for e in by_wear.values())
    assert (tmp_path / "out" / "synth_check.json").is_file()


def test_mirrored_landmarks_fallback(tmp_path, astronaut_path, landmarker, detector):
    """When the landmarker misses a face, the mirrored photo is tried and the mask is drawn on
    the mirror image and flipped back: it must land on the face of the original."""
    from maskface.synth.batch import FaceMasker, SynthConfig

    original = cv2.imread(str(astronaut_path))
    truth = landmarker.landmarks(original, detector.detect(original).boxes[0])
    masker = FaceMasker(SynthConfig(seed=0))
    real = masker.landmarker.landmarks

    def miss_unless_mirrored(image, box=None):
        return None if np.array_equal(image, original) else real(image, box)

    masker.landmarker.landmarks = miss_unless_mirrored
    try:
        src = tmp_path / "in" / "astro.jpg"
        src.parent.mkdir()
        cv2.imwrite(str(src), original)
        from maskface.io import load_image

        original = load_image(src)  # what the masker will see
        found = masker.find_face(original)
        assert found.mirrored, "the fallback should have been taken"
        rows, reason = masker.process(src, Path("astro.jpg"), Path("astro.jpg"),
                                     tmp_path / "out")
    finally:
        masker.close()
    assert reason is None and len(rows) == 1
    out = cv2.imread(str(tmp_path / "out" / "astro.jpg"))
    changed = np.abs(out.astype(int) - original).sum(axis=2) > 30  # beyond JPEG noise
    for i in (L.MOUTH_L, L.MOUTH_R, L.NOSE_TIP):
        assert _at(changed, truth.points[i]), f"landmark {i} not covered"
    for i in L.EYE_L + L.EYE_R:
        assert not _at(changed, truth.points[i])
    assert rows[0].yaw == pytest.approx(truth.yaw, abs=0.1)


def test_face_crop_writes_the_classifier_view_of_every_class(tmp_path, astronaut_path):
    """--face-crop: square crops around the detected face, and the bare face as without_mask."""
    from maskface.synth.batch import SynthConfig, read_manifest, synthesize

    src = _small_tree(tmp_path, astronaut_path, None)
    synthesize(src, tmp_path / "out", SynthConfig(seed=1, by_class=True, face_crop=True,
                                                  incorrect_rate=0.5))
    rows = read_manifest(tmp_path / "out" / "manifest.csv")
    assert len(rows) == 2
    bare = sorted((tmp_path / "out" / "without_mask").glob("*"))
    assert len(bare) == 2
    for r in rows:
        img = cv2.imread(str(tmp_path / "out" / r.output))
        side = 1.15 * max(r.x2 - r.x1, r.y2 - r.y1)
        assert abs(img.shape[0] - side) <= 2 and abs(img.shape[1] - side) <= 2


def test_building_the_landmarker_prints_nothing_and_keeps_stderr():
    """MediaPipe's native log lines while its graph is built are not shown to a user, and
    the process's own stderr works again afterwards."""
    import subprocess
    import sys

    code = ("import sys; from maskface.synth import FaceLandmarker; "
            "FaceLandmarker().close(); print('after', file=sys.stderr)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "after"

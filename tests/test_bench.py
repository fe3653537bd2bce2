"""``maskface bench`` and its parts. Timings are reported, never asserted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskface.geometry import iou_matrix


def test_ssd_baseline_finds_the_astronaut_without_landmarks(astronaut):
    from maskface.detect import create_detector
    from maskface.detect.ssd_baseline import SSDBaselineDetector

    ssd = SSDBaselineDetector().detect(astronaut)
    yunet = create_detector("yunet").detect(astronaut)
    assert len(ssd) == 1
    assert iou_matrix(ssd.boxes, yunet.boxes)[0, 0] > 0.5
    assert np.isnan(ssd.landmarks).all()  # the SSD predicts none: never aligned on


def test_measure_counts_calls_and_orders_quartiles():
    from maskface.bench import measure

    calls = []
    stat = measure(calls.append, [1, 2, 3], repeats=4, warmup=2)
    assert len(calls) == 3 * (4 + 2) and stat.n == 12
    assert stat.min_ms <= stat.q1_ms <= stat.median_ms <= stat.q3_ms <= stat.max_ms


def test_measure_interleaved_takes_turns():
    import time

    from maskface.bench.timing import measure_interleaved

    calls = []
    stats = measure_interleaved({"a": lambda: calls.append("a"),
                                 "b": lambda: (calls.append("b"), time.sleep(0.002))},
                                rounds=5, warmup=1)
    assert calls == ["a", "b"] * 6 and stats["a"].n == stats["b"].n == 5
    assert stats["b"].median_ms > stats["a"].median_ms


def test_measure_paired_swaps_the_order_and_brackets_the_ratio():
    import time

    from maskface.bench.timing import measure_paired

    calls = []
    paired = measure_paired(lambda it: calls.append(("a", it)),
                            lambda it: (calls.append(("b", it)), time.sleep(0.003)),
                            [1, 2], repeats=3, warmup=1)
    timed = calls[4:]  # after the warm-up's a, b per item
    assert [c[1] for c in timed[::2]] == [1, 2, 1, 2, 1, 2]  # each pair on one item
    assert [c[0] for c in timed[::2]] == ["a", "b", "a", "b", "a", "b"]  # order swapped
    assert paired.pairs == paired.a.n == paired.b.n == 6
    lo, hi = paired.ratio_ci95
    assert 1 < lo <= paired.ratio_median <= hi  # b sleeps, a does nothing
    assert paired.to_dict()["ratio_ci95"] == [round(lo, 4), round(hi, 4)]


def test_measure_streams_shares_one_queue_between_workers():
    import threading

    from maskface.bench.timing import measure_streams

    seen: dict[str, list[int]] = {"a": [], "b": []}
    gate = threading.Barrier(2)  # both workers must be running at once

    def worker(name):
        def run(item):
            if item == 0:
                gate.wait(timeout=5)
            seen[name].append(item)
        return run

    items = [0, 0] + list(range(1, 21))
    stat = measure_streams([worker("a"), worker("b")], items, repeats=2, warmup=0)
    assert stat.n == 2 and stat.median_ms > 0
    done = seen["a"] + seen["b"]
    assert sorted(done) == sorted(items * 2)  # every item once per round, none twice
    assert seen["a"] and seen["b"]


def test_builtin_images_have_one_to_three_faces():
    from maskface.bench.images import builtin_images
    from maskface.detect import create_detector

    det = create_detector("yunet")
    for masked in (False, True):
        frames = builtin_images((640, 480), masked=masked)
        assert all(f.shape == (480, 640, 3) for f in frames)
        assert [len(det.detect(f)) for f in frames] == [1, 2, 3]


def test_full_frame_routes_masked_faces_through_the_masked_path(classifier_available,
                                                                  tmp_path):
    """The timed full frame embeds what the classifier calls masked as the pipeline does."""
    from maskface.bench.images import builtin_images, encode_jpeg
    from maskface.bench.runner import BenchConfig, OurPipeline

    pipe = OurPipeline(BenchConfig(images=[], gallery_size=5), tmp_path)
    calls = []
    embed = pipe.embedder.embed
    pipe.embedder.embed = lambda faces, masked=None: calls.append(list(masked)) or embed(
        faces, masked)
    for masked in (False, True):
        pipe.full(encode_jpeg(builtin_images((640, 480), masked=masked)[1]))
    pipe.close()
    assert calls == [[False, False], [True, True]]


def test_scene_accuracy_matches_ground_truth(data_dir):
    from maskface.bench.accuracy import scene_accuracy
    from maskface.eval.scenes import load_scenes

    scenes = load_scenes(data_dir / "scenes/dataroots")[:8]
    by_path = {s.path: s for s in scenes}
    current = {}

    def load(path):
        current["scene"] = by_path[path]
        return np.zeros((4, 4, 3), np.uint8)

    perfect = scene_accuracy(scenes, lambda _: (current["scene"].boxes,
                                                list(current["scene"].labels)), load=load)
    assert perfect.faces == sum(len(s) for s in scenes)
    assert perfect.recall == perfect.accuracy == 1.0 and perfect.false_detections == 0
    flipped = scene_accuracy(
        scenes, lambda _: (current["scene"].boxes + 1000.0,
                           ["without_mask"] * len(current["scene"])), load=load)
    assert flipped.recall == 0.0 and flipped.false_detections == perfect.faces


@pytest.fixture(scope="module")
def classifier_available() -> None:
    from maskface.errors import ModelError
    from maskface.models import model_path

    try:
        model_path("mask_classifier")
    except ModelError as exc:
        pytest.skip(f"no shipped mask classifier: {exc}")


@pytest.mark.slow
def test_bench_cli_reports_stages_baseline_ratio_and_table(classifier_available, tmp_path):
    pytest.importorskip("torch")  # the 224-px baseline classifier is exported at bench time
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    report = tmp_path / "bench.json"
    res = CliRunner().invoke(load_commands(), [
        "bench", "--report", str(report), "--repeats", "1", "--warmup", "0", "--batch", "2",
        "--embedder", "sface", "--gallery-size", "20", "--det-size", "640", "--streams", "2"],
        env={"MASKFACE_CACHE": str(tmp_path / "cache")})
    assert res.exit_code == 0, res.output
    data = json.loads(report.read_text())
    assert set(data["stages"]) >= {"decode", "detect", "align", "classify", "embed", "match"}
    assert set(data["end_to_end"]) >= {"detect_classify", "full", "full_masked", "kiosk",
                                       "kiosk_masked", "full_batched_x2",
                                       "detect_classify_streams_x2", "full_streams_x2"}
    assert data["baseline"]["end_to_end_streams_x2"]["n"] == 1
    # the door's frame timed in turn with the baseline's: 4 rounds per repeat, a ratio each
    assert data["end_to_end"]["kiosk_masked"]["n"] == data["baseline"]["kiosk_frame"]["n"] == 4
    assert set(data["kiosk_vs_baseline"]) == {"kiosk", "kiosk_masked"}
    assert all(v > 0 for v in data["kiosk_vs_baseline"].values())
    assert data["speedup_vs_baseline"]["detect_classify_streams"] > 0
    assert data["images"]["faces_per_image"] == [1, 2, 3]
    assert data["baseline"]["faces_per_image"] == [1, 2, 3]  # same faces, fair comparison
    assert data["speedup_vs_baseline"]["detect_classify"] > 0
    assert data["memory_mb"]["peak_after_baseline"] >= data["memory_mb"]["before_models"] > 0
    table = report.with_suffix(".md").read_text()
    assert "| detect |" in table and "baseline end to end" in table and "Speed-up" in table
    assert "Door frame" in table


def test_yunet_on_onnxruntime_matches_opencv(data_dir):
    """The onnxruntime YuNet (a speed-up) must find the same faces as cv2.FaceDetectorYN."""
    import cv2

    from maskface.detect.yunet_onnx import YuNetOnnx
    from maskface.eval.scenes import load_scenes
    from maskface.io import load_image
    from maskface.models import model_path

    ref = cv2.FaceDetectorYN.create(str(model_path("yunet")), "", (320, 320), 0.6, 0.3, 5000)
    ours = YuNetOnnx(0.6, 0.3, 5000)
    n = 0
    for scene in load_scenes(data_dir / "scenes/dataroots")[:12]:
        img = load_image(scene.path)
        ref.setInputSize((img.shape[1], img.shape[0]))
        a, b = ref.detect(img)[1], ours.detect(img)[1]
        if a is None:
            assert b is None
            continue
        assert b is not None and len(a) == len(b)
        order = np.argsort(-a[:, 14]), np.argsort(-b[:, 14])
        np.testing.assert_allclose(b[order[1]], a[order[0]], atol=1e-2)
        n += len(a)
    assert n >= 12


def test_bench_against_times_two_classifiers_in_pairs(classifier_available, tmp_path):
    """--against: detect+classify and the classify stage with the other classifier, pair by
    pair on the same frames; the report and the table give the ratio with its interval."""
    from typer.testing import CliRunner

    from maskface.cli import load_commands

    report = tmp_path / "bench.json"
    res = CliRunner().invoke(load_commands(), [
        "bench", "--report", str(report), "--repeats", "1", "--warmup", "0", "--embedder",
        "none", "--no-baseline", "--streams", "1", "--profile", "kiosk",
        "--against", "mask_classifier"])
    assert res.exit_code == 0, res.output
    vs = json.loads(report.read_text())["against"]
    assert vs["classifier"] == "mask_classifier"
    for part in ("detect_classify", "classify"):
        assert vs[part]["pairs"] == 4 * 3  # 4 rounds per repeat over the 3 built-in frames
        lo, hi = vs[part]["ratio_ci95"]
        assert 0 < lo <= vs[part]["ratio_median"] <= hi
    assert "Against `mask_classifier`" in report.with_suffix(".md").read_text()
    # no baseline was run: no memory figure "after the baseline" (it was printed anyway)
    assert json.loads(report.read_text())["memory_mb"]["peak_after_baseline"] is None
    assert "after the baseline" not in report.with_suffix(".md").read_text()
    bad = CliRunner().invoke(load_commands(), [
        "bench", "--report", str(report), "--repeats", "1", "--embedder", "none",
        "--no-baseline", "--streams", "1", "--against", str(tmp_path / "nope.onnx")])
    assert bad.exit_code == 1 and "nope.onnx" in bad.output


def test_frame_sizes_are_checked_both_ways():
    """A typo'd 100000x100000 tried to allocate 30 GB and died in a cv2.error traceback."""
    from maskface.bench.images import parse_size
    from maskface.errors import InputError

    assert parse_size("1920X1080") == (1920, 1080)
    for bad, said in (("16x16", "too small"), ("100000x100000", "too large"),
                      ("640", "not WIDTHxHEIGHT")):
        with pytest.raises(InputError, match=said):
            parse_size(bad)

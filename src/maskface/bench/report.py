"""The bench report as a markdown table (printed, and pasted into docs/README)."""

from __future__ import annotations

from typing import Any

_STAGE_NOTES = {
    "decode": "JPEG bytes to BGR array",
    "detect": "face boxes + 5 landmarks",
    "align": "5-point warp to 112x112, all faces",
    "classify": "mask classifier, all faces in one batch",
    "classify_one_at_a_time": "same, one face per run (for comparison)",
    "embed": "identity embeddings, all faces",
    "embed_as_masked": "the same faces through the masked path (re-alignment, adapter)",
    "match": "1:N search in the gallery",
    "liveness": "liveness (MiniFASNet pair), all faces in one batch",
    "liveness_per_face": "liveness, one face per run: time per face",
    "quality": "face quality (size, sharpness, pose, exposure), all faces",
}

_E2E_NOTES = {
    "full": "decode included; detect, classify, embed (masked faces by the masked path), match",
    "full_masked": "the same frames, every face masked",
    "kiosk": "one person at the door: every stage (liveness, quality, recognition at the "
             "gallery's thresholds); timed in turn with the baseline's frame",
    "kiosk_masked": "the same, wearing a mask",
}


def _row(name: str, s: dict[str, Any], note: str = "") -> str:
    return (f"| {name} | {s['median_ms']:.1f} | {s['q1_ms']:.1f}–{s['q3_ms']:.1f} | "
            f"{s['cpu_ms']:.1f} | {s['per_second']:.1f} | {note} |")


def to_markdown(report: dict[str, Any]) -> str:
    """Stages, end to end, the baseline and the ratio, as one markdown document."""
    env, imgs = report["environment"], report["images"]
    lines = [
        f"Images: {imgs['source']}, {imgs['count']} frames of {imgs['size']}, "
        f"{imgs['faces_mean']:.1f} faces per frame on average; "
        f"{env['threads']} threads on {env['cpu_count']} cores "
        f"(load average {env['load_average_at_start'][0]} at start, "
        f"{env.get('load_average_at_end', ['?'])[0]} at end); "
        f"onnxruntime {env['onnxruntime']}, OpenCV {env['opencv']}.",
        "",
        "| stage (per frame) | median ms | IQR ms | CPU ms | per s | what |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, s in report["stages"].items():
        lines.append(_row(name, s, _STAGE_NOTES.get(name, "")))
    for name, s in report["end_to_end"].items():
        note = ("decode included; parallel single-threaded pipelines, time per frame"
                if "_streams_x" in name else _E2E_NOTES.get(name, "decode included"))
        lines.append(_row(f"**end to end: {name}**", s, note))
    base = report.get("baseline")
    if base:
        for name, s in base["stages"].items():
            lines.append(_row(f"baseline: {name}", s))
        lines.append(_row("**baseline end to end**", base["end_to_end"], base["description"]))
        if "kiosk_frame" in base:
            lines.append(_row("baseline: the kiosk's frame", base["kiosk_frame"],
                              "one face, timed in turn with the kiosk rows"))
        for key, s in base.items():
            if key.startswith("end_to_end_streams_x"):
                n = key.rsplit("x", 1)[1]
                lines.append(_row(f"**baseline end to end: {n} streams**", s,
                                  f"{n} single-threaded copies in parallel"))
    lines.append("")
    if report.get("speedup_vs_baseline"):
        sp = report["speedup_vs_baseline"]
        parts = [f"detect+classify **{sp['detect_classify']:.1f}×** the baseline's throughput "
                 f"(CPU time ratio {sp['detect_classify_cpu']:.1f}×)"]
        if "full" in sp:
            parts.append(f"full pipeline with recognition {sp['full']:.1f}×")
        if "detect_classify_streams" in sp:
            parts.append(f"with one stream per core for both, detect+classify "
                         f"**{sp['detect_classify_streams']:.1f}×**")
        if "full_streams" in sp:
            parts.append(f"full pipeline {sp['full_streams']:.1f}×")
        lines.append("Speed-up: " + "; ".join(parts) + ".")
    kiosk = report.get("kiosk_vs_baseline")
    if kiosk:
        lines.append(f"Door frame (one face, every stage; timed in turn with the baseline's "
                     f"frame): bare-faced **{kiosk['kiosk']:.2f}×** the baseline's time, "
                     f"masked **{kiosk['kiosk_masked']:.2f}×**.")
    vs = report.get("against")
    if vs:
        dc, cl = vs["detect_classify"], vs["classify"]

        def pct(r: float) -> str:
            return f"{(r - 1) * 100:+.1f} %"

        lines.append(
            f"Against `{vs['classifier']}` (timed in {dc['pairs']} pairs on the same frames, "
            f"back to back): detect+classify {dc['b']['median_ms']:.2f} ms against "
            f"{dc['a']['median_ms']:.2f}, **{pct(dc['ratio_median'])}** per pair (median; 95 % "
            f"interval {pct(dc['ratio_ci95'][0])} to {pct(dc['ratio_ci95'][1])}); classify stage "
            f"{cl['b']['median_ms']:.2f} ms against {cl['a']['median_ms']:.2f}, "
            f"{pct(cl['ratio_median'])} ({pct(cl['ratio_ci95'][0])} to "
            f"{pct(cl['ratio_ci95'][1])}).")
    acc = report.get("accuracy")
    if acc:
        lines += ["", f"Accuracy on {acc['images']} images of `{acc['scenes']}` "
                  "(IoU > 0.5; correct = found and mask label right):", "",
                  "| pipeline | faces | recall | accuracy | false detections |",
                  "|---|---:|---:|---:|---:|"]
        for name, a in acc.items():
            if isinstance(a, dict):
                lines.append(f"| {name} | {a['faces']} | {a['recall']:.3f} | "
                             f"{a['accuracy']:.3f} | {a['false_detections']} |")
    mem = report["memory_mb"]
    after_base = mem.get("peak_after_baseline")
    lines += ["", f"Peak memory (RSS): {mem['peak_after_loading_ours']:.0f} MiB after loading "
              f"our models, {mem['peak_after_ours']:.0f} MiB after running them"
              + (f", {after_base:.0f} MiB after the baseline too." if after_base is not None
                 else ".")]
    return "\n".join(lines) + "\n"

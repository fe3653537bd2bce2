"""Benchmarks: stage-by-stage timings, the seeds' baseline for a ratio, and scene accuracy."""

from maskface.bench.report import to_markdown
from maskface.bench.runner import BenchConfig, run_bench
from maskface.bench.timing import Stat, measure, peak_rss_mb

__all__ = ["BenchConfig", "Stat", "measure", "peak_rss_mb", "run_bench", "to_markdown"]

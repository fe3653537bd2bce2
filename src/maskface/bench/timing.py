"""Repeated timing with warm-up: median and inter-quartile range of wall and CPU time."""

from __future__ import annotations

import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Stat:
    """Wall time per call in milliseconds (median, quartiles, extremes) and median CPU time.

    CPU time is the process's (all threads): on a machine shared with other jobs, wall time
    grows with the load while CPU time stays close to the work done.
    """

    n: int
    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    max_ms: float
    cpu_ms: float

    @property
    def fps(self) -> float:
        return 1000.0 / self.median_ms if self.median_ms > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        d = {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}
        d["per_second"] = round(self.fps, 2)
        return d


def measure(fn: Callable[[Any], Any], items: Sequence[Any], repeats: int = 5,
            warmup: int = 1, per: int = 1) -> Stat:
    """Time ``fn(item)`` for every item, ``repeats`` times after ``warmup`` untimed rounds.

    ``per`` divides each sample (e.g. a batch of ``per`` images timed as one call).
    """
    for _ in range(warmup):
        for it in items:
            fn(it)
    wall, cpu = [], []
    for _ in range(repeats):
        for it in items:
            w, c = _timed(fn, it)
            wall.append(w / per)
            cpu.append(c / per)
    return _stat(wall, cpu)


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[float, float]:
    """Wall and process CPU milliseconds of one call."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3


def measure_streams(workers: Sequence[Callable[[Any], Any]], items: Sequence[Any],
                    repeats: int = 5, warmup: int = 1) -> Stat:
    """Throughput of ``len(workers)`` parallel streams sharing one queue of ``items``.

    Each worker (its own models, one thread each) takes the next item until none is left. A
    sample is one round over all items: its wall and CPU time divided by the number of items,
    i.e. the time per frame a server running this many streams achieves.
    """
    def round_() -> None:
        queue = iter(items)
        lock = threading.Lock()

        def drain(fn: Callable[[Any], Any]) -> None:
            while True:
                with lock:
                    item = next(queue, _DONE)
                if item is _DONE:
                    return
                fn(item)

        with ThreadPoolExecutor(len(workers)) as pool:
            for f in [pool.submit(drain, fn) for fn in workers]:
                f.result()

    for _ in range(warmup):
        round_()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = _timed(round_)
        wall.append(w / len(items))
        cpu.append(c / len(items))
    return _stat(wall, cpu)


_DONE = object()


def measure_interleaved(fns: dict[str, Callable[[], Any]], rounds: int = 20,
                        warmup: int = 1) -> dict[str, Stat]:
    """Time every one of ``fns`` once per round, in turn, for ``rounds`` rounds: ratios between
    them hold on a machine whose speed drifts from minute to minute, which ratios between
    separate runs do not."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            w, c = _timed(fn)
            wall[name].append(w)
            cpu[name].append(c)
    return {k: _stat(wall[k], cpu[k]) for k in fns}


@dataclass(frozen=True)
class Paired:
    """Two variants timed back to back on the same items: each one's :class:`Stat`, and the
    ratio ``b / a`` of each pair's wall times (median, and a bootstrap 95 % interval of that
    median). Pairs cancel the minute-to-minute drift that separate runs carry into a ratio."""

    a: Stat
    b: Stat
    ratio_median: float
    ratio_ci95: tuple[float, float]
    pairs: int

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.to_dict(), "b": self.b.to_dict(),
                "ratio_median": round(self.ratio_median, 4),
                "ratio_ci95": [round(v, 4) for v in self.ratio_ci95], "pairs": self.pairs}


def measure_paired(fa: Callable[[Any], Any], fb: Callable[[Any], Any], items: Sequence[Any],
                   repeats: int = 5, warmup: int = 1, resamples: int = 2000) -> Paired:
    """Time ``fa(item)`` and ``fb(item)`` back to back for every item, ``repeats`` times, the
    order swapped every other pair (so neither always runs on a warm cache)."""
    for _ in range(warmup):
        for it in items:
            fa(it)
            fb(it)
    wa, ca, wb, cb = [], [], [], []
    k = 0
    for _ in range(repeats):
        for it in items:
            if k % 2:
                tb, ub = _timed(fb, it)
                ta, ua = _timed(fa, it)
            else:
                ta, ua = _timed(fa, it)
                tb, ub = _timed(fb, it)
            wa.append(ta)
            ca.append(ua)
            wb.append(tb)
            cb.append(ub)
            k += 1
    ratio = np.asarray(wb) / np.maximum(np.asarray(wa), 1e-9)
    rng = np.random.default_rng(0)
    boot = np.median(ratio[rng.integers(0, len(ratio), (resamples, len(ratio)))], axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return Paired(_stat(wa, ca), _stat(wb, cb), float(np.median(ratio)),
                  (float(lo), float(hi)), len(ratio))


def _stat(wall: list[float], cpu: list[float]) -> Stat:
    w = np.asarray(wall)
    q1, med, q3 = np.percentile(w, [25, 50, 75])
    return Stat(len(w), float(med), float(q1), float(q3), float(w.min()), float(w.max()),
                float(np.median(cpu)))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024

"""Prometheus text-format metrics without a client library: counters and histograms.

Labels are bounded (route templates, status codes, decision and reason codes, doors: one per
kiosk key an admin made), never raw paths or names, so the number of series cannot grow with
traffic.
"""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    esc = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for v in values)
    return "{" + ",".join(f'{n}="{v}"' for n, v in zip(names, esc)) + "}"


class Counter:
    def __init__(self, name: str, help_: str, labels: tuple[str, ...] = ()):
        self.name, self.help, self.labels = name, help_, labels
        self._values: dict[tuple[str, ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def inc(self, *values: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[tuple(values)] += amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted(self._values.items())
        lines += [f"{self.name}{_labels(self.labels, k)} {v:g}" for k, v in items]
        return lines


class Histogram:
    def __init__(self, name: str, help_: str, labels: tuple[str, ...] = (),
                 buckets: tuple[float, ...] = LATENCY_BUCKETS):
        self.name, self.help, self.labels, self.buckets = name, help_, labels, buckets
        self._counts: dict[tuple[str, ...], list[int]] = {}
        self._sums: dict[tuple[str, ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def observe(self, value: float, *values: str) -> None:
        key = tuple(values)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            for i, b in enumerate(self.buckets):
                if value <= b:
                    counts[i] += 1
            counts[-1] += 1
            self._sums[key] += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            items = sorted((k, list(c), self._sums[k]) for k, c in self._counts.items())
        for key, counts, total in items:
            for b, c in zip(self.buckets, counts):
                lab = _labels((*self.labels, "le"), (*key, f"{b:g}"))
                lines.append(f"{self.name}_bucket{lab} {c}")
            lines.append(f"{self.name}_bucket{_labels((*self.labels, 'le'), (*key, '+Inf'))} "
                         f"{counts[-1]}")
            lines.append(f"{self.name}_sum{_labels(self.labels, key)} {total:.6f}")
            lines.append(f"{self.name}_count{_labels(self.labels, key)} {counts[-1]}")
        return lines


class ServiceMetrics:
    """The service's metrics, one instance per app."""

    def __init__(self):
        self.requests = Counter("maskface_http_requests_total", "HTTP requests by route and status",
                                ("method", "route", "status"))
        self.latency = Histogram("maskface_http_request_duration_seconds",
                                 "HTTP request latency by route", ("route",))
        self.inference = Histogram("maskface_inference_duration_seconds",
                                   "Model inference time per image", ("task",))
        self.decisions = Counter("maskface_access_decisions_total", "Access decisions by door",
                                 ("door", "decision"))
        self.reasons = Counter("maskface_access_denial_reasons_total",
                               "Reasons given for denied access, by door", ("door", "reason"))

    def render(self, gauges: dict[str, tuple[str, float]] | None = None) -> str:
        lines: list[str] = []
        for name, (help_, value) in (gauges or {}).items():
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        for m in (self.requests, self.latency, self.inference, self.decisions, self.reasons):
            lines += m.render()
        return "\n".join(lines) + "\n"

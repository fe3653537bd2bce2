"""The machine a figure was measured or a model trained on, for reports and cards."""

from __future__ import annotations

import platform
from functools import cache


@cache
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; ``platform.processor()`` elsewhere).

    Training on another CPU model takes other floating-point kernels: the same command and
    seed then give other weights, so cards and bench reports name it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

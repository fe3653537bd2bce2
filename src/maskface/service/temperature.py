"""Body temperature: where a kiosk's reading comes from.

The seeds' thermal camera becomes a :class:`TemperatureSource`. A real sensor pushes readings to
``POST /v1/temperature`` (:class:`PushedTemperature`); :class:`SimulatedTemperature` stands in
for one in demos and tests.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from maskface.errors import InputError

#: readings outside this range are sensor faults, not body temperatures
PLAUSIBLE_C = (25.0, 45.0)


@dataclass(frozen=True)
class TemperatureReading:
    celsius: float
    time: float
    source: str

    def to_dict(self) -> dict:
        return {"celsius": round(self.celsius, 2), "time": self.time, "source": self.source}


def check_celsius(value: float) -> float:
    """Reject readings that cannot be a body temperature (a sensor fault or a unit mix-up)."""
    lo, hi = PLAUSIBLE_C
    if not lo <= value <= hi:
        raise InputError(f"temperature {value} °C is outside the plausible range {lo}-{hi} °C "
                         "(is it in Fahrenheit?)")
    return float(value)


class TemperatureSource(Protocol):
    """Anything that can give the current body temperature at the kiosk."""

    def read(self) -> TemperatureReading | None:
        """The current reading, or ``None`` when there is none."""
        ...


class NoTemperature:
    """No sensor: access checks rely on a temperature sent with the request, if any."""

    def read(self) -> TemperatureReading | None:
        return None


class SimulatedTemperature:
    """Normal body temperatures drawn from a seeded Gaussian, for demos and tests."""

    def __init__(self, mean: float = 36.6, sd: float = 0.3, seed: int = 0):
        self.mean, self.sd = mean, sd
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def read(self) -> TemperatureReading:
        with self._lock:
            value = self._rng.gauss(self.mean, self.sd)
        return TemperatureReading(round(value, 2), time.time(), "simulated")


class PushedTemperature:
    """The latest reading a sensor pushed, valid for ``max_age_s`` seconds.

    Stale readings are ignored: a reading belongs to the person in front of the kiosk now, not to
    the one who stood there a minute ago.
    """

    def __init__(self, max_age_s: float = 10.0):
        self.max_age_s = max_age_s
        self._latest: TemperatureReading | None = None
        self._lock = threading.Lock()

    def push(self, celsius: float, source: str = "sensor") -> TemperatureReading:
        reading = TemperatureReading(check_celsius(celsius), time.time(), source)
        with self._lock:
            self._latest = reading
        return reading

    def read(self) -> TemperatureReading | None:
        with self._lock:
            r = self._latest
        if r is None or time.time() - r.time > self.max_age_s:
            return None
        return r


def create_source(kind: str, max_age_s: float = 10.0, mean: float = 36.6, sd: float = 0.3,
                  seed: int = 0) -> TemperatureSource:
    if kind == "push":
        return PushedTemperature(max_age_s)
    if kind == "simulated":
        return SimulatedTemperature(mean, sd, seed)
    if kind == "none":
        return NoTemperature()
    raise InputError(f"unknown temperature source '{kind}'")

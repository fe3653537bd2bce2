"""Body temperature: where a kiosk's reading comes from.

The seeds' thermal camera becomes a :class:`TemperatureSource`. A real sensor pushes readings to
``POST /v1/temperature`` (:class:`PushedTemperature`), each for its own door;
:class:`SimulatedTemperature` stands in for one in demos and tests.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from maskface.errors import InputError

if TYPE_CHECKING:
    from maskface.storage import Database

#: readings outside this range are sensor faults, not body temperatures
PLAUSIBLE_C = (25.0, 45.0)


@dataclass(frozen=True)
class TemperatureReading:
    celsius: float
    time: float
    source: str
    #: the door whose sensor took it (``None``: a source that serves every door)
    door: str | None = None

    def to_dict(self) -> dict:
        return {"celsius": round(self.celsius, 2), "time": self.time, "source": self.source,
                "door": self.door}


def check_celsius(value: float) -> float:
    """Reject readings that cannot be a body temperature (a sensor fault or a unit mix-up)."""
    lo, hi = PLAUSIBLE_C
    if not lo <= value <= hi:
        raise InputError(f"temperature {value} °C is outside the plausible range {lo}-{hi} °C "
                         "(is it in Fahrenheit?)")
    return float(value)


class TemperatureSource(Protocol):
    """Anything that can give the current body temperature at a door's kiosk."""

    def read(self, door: str | None = None) -> TemperatureReading | None:
        """The current reading at ``door``, or ``None`` when there is none."""
        ...


class NoTemperature:
    """No sensor: access checks rely on a temperature sent with the request, if any."""

    def read(self, door: str | None = None) -> TemperatureReading | None:
        return None


class SimulatedTemperature:
    """Normal body temperatures drawn from a seeded Gaussian, for demos and tests."""

    def __init__(self, mean: float = 36.6, sd: float = 0.3, seed: int = 0):
        self.mean, self.sd = mean, sd
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def read(self, door: str | None = None) -> TemperatureReading:
        with self._lock:
            value = self._rng.gauss(self.mean, self.sd)
        return TemperatureReading(round(value, 2), time.time(), "simulated")


class PushedTemperature:
    """The latest reading each door's sensor pushed, valid for ``max_age_s`` seconds.

    A reading belongs to the door it was pushed for (the sensor's key's door) and to the person in
    front of that kiosk now: another door's reading, or a stale one, is never used. With a
    ``db`` the readings live in the shared store, so every replica behind a load balancer sees
    the reading whichever one the sensor reached; without one, in this process.
    """

    def __init__(self, max_age_s: float = 10.0, db: Database | None = None):
        from maskface.service.settings import SettingsStore

        self.max_age_s = max_age_s
        self._store = SettingsStore(db) if db is not None else None
        self._latest: dict[str | None, TemperatureReading] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(door: str | None) -> str:
        return _READING_PREFIX + (door or "")

    def push(self, celsius: float, source: str = "sensor",
             door: str | None = None) -> TemperatureReading:
        reading = TemperatureReading(check_celsius(celsius), time.time(), source, door)
        if self._store is None:
            with self._lock:
                self._latest[door] = reading
        else:
            self._store.put(self._key(door), json.dumps(
                {"celsius": reading.celsius, "time": reading.time, "source": source}))
        return reading

    def read(self, door: str | None = None) -> TemperatureReading | None:
        if self._store is None:
            with self._lock:
                r = self._latest.get(door)
        else:
            value = self._store.get(self._key(door)).get(self._key(door))
            r = None if value is None else TemperatureReading(**json.loads(value), door=door)
        if r is None or time.time() - r.time > self.max_age_s:
            return None
        return r


#: a door's latest pushed reading is stored (service_settings) under this prefix and its name
_READING_PREFIX = "temperature:door:"


def create_source(kind: str, max_age_s: float = 10.0, mean: float = 36.6, sd: float = 0.3,
                  seed: int = 0, db: Database | None = None) -> TemperatureSource:
    if kind == "push":
        return PushedTemperature(max_age_s, db)
    if kind == "simulated":
        return SimulatedTemperature(mean, sd, seed)
    if kind == "none":
        return NoTemperature()
    raise InputError(f"unknown temperature source '{kind}'")

"""Everything one app instance holds: config, stores, models (loaded once), metrics."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from maskface.service.auth import KeyStore
from maskface.service.config import Policy, ServiceConfig
from maskface.service.events import EventLog
from maskface.service.metrics import ServiceMetrics
from maskface.service.settings import SettingsStore
from maskface.service.temperature import TemperatureSource, create_source
from maskface.storage import Database, open_database

if TYPE_CHECKING:
    from maskface.service.engine import Engine
    from maskface.service.people import People


@dataclass
class ServiceState:
    config: ServiceConfig
    keys: KeyStore
    events: EventLog
    settings: SettingsStore
    temperature: TemperatureSource
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    version: str = "0"
    started: float = field(default_factory=time.time)
    #: set by the app's startup (lifespan): models load once per process, not per request
    engine: Engine | None = None
    people: People | None = None
    #: admission to model-running routes (see deps.inference_slot); made in the app's event loop
    gate: asyncio.Semaphore | None = None
    #: the store every part above shares (one SQLite file or one PostgreSQL pool)
    database: Database | None = None

    @classmethod
    def open(cls, config: ServiceConfig) -> ServiceState:
        from maskface import __version__

        db = open_database(config.db)  # made or migrated; refuses stores it did not make
        t = config.temperature
        return cls(config=config, keys=KeyStore(db), events=EventLog(db),
                   settings=SettingsStore(db), database=db,
                   temperature=create_source(t.source, t.max_age_s, t.simulated_mean,
                                             t.simulated_sd, t.seed, db),
                   version=__version__)

    @property
    def policy(self) -> Policy:
        """The building's policy: set through the API if any, else the config file's."""
        return self.door_policy(None)[0]

    def door_policy(self, door: str | None) -> tuple[Policy, str]:
        """The policy in force at ``door`` and where it comes from: the door's own
        (``"door"``), else the building's (``"api"`` or ``"config"``)."""
        return self.settings.in_force(door, self.config.policy)

    @property
    def uptime_s(self) -> float:
        return time.time() - self.started

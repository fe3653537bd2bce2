"""Settings changed through the API (the policies), and each door's latest sensor reading,
persisted in the store so they survive a restart and every replica sees them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from maskface.errors import InputError
from maskface.service.config import Policy
from maskface.storage import Database, open_database

log = logging.getLogger(__name__)


class SettingsStore:
    """Key/value JSON settings in the service database.

    The policy set through ``PUT /v1/policy`` overrides the config file's until it is reset
    with ``DELETE /v1/policy``; the file stays the deployment's baseline. A door may have a
    policy of its own (``?door=``), which overrides the building's for the checks made there.
    """

    def __init__(self, db: Database | str | Path):
        self.db = open_database(db)

    def get(self, *keys: str) -> dict[str, str]:
        """The stored values of ``keys`` (those that are set), in one read."""
        marks = ", ".join("?" * len(keys))
        with self.db.transaction(write=False) as tx:
            return dict(tx.execute(f"SELECT key, value FROM service_settings WHERE key IN "
                                   f"({marks})", keys).fetchall())

    def put(self, key: str, value: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("INSERT INTO service_settings (key, value) VALUES (?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def delete(self, key: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM service_settings WHERE key = ?", (key,))

    def policy(self, door: str | None = None) -> Policy | None:
        """The building's policy set through the API, or ``door``'s own (``None``: not set)."""
        value = self.get(_key(door)).get(_key(door))
        return None if value is None else _policy(value)

    def policies(self, door: str | None) -> tuple[Policy | None, Policy | None]:
        """``door``'s own policy (``None`` for no door) and the building's API-set one, in one
        read (an access check's)."""
        keys = (None if door is None else _key(door), _key(None))
        rows = self.get(*(k for k in keys if k is not None))
        own, building = (_policy(rows[k]) if k in rows else None for k in keys)
        return own, building

    def in_force(self, door: str | None, config_policy: Policy) -> tuple[Policy, str]:
        """The policy that applies at ``door`` (``None``: the building) and where it comes
        from: the door's own (``"door"``), else the building's set through the API (``"api"``),
        else the config file's (``"config"``). One read."""
        own, building = self.policies(door)
        if own is not None:
            return own, "door"
        return (building, "api") if building is not None else (config_policy, "config")

    def set_policy(self, policy: Policy, door: str | None = None) -> None:
        self.put(_key(door), json.dumps(policy.to_dict()))

    def reset_policy(self, door: str | None = None) -> None:
        self.delete(_key(door))

    def door_policies(self) -> dict[str, Policy]:
        """Every door with a policy of its own, by door name."""
        with self.db.transaction(write=False) as tx:
            rows = tx.execute("SELECT key, value FROM service_settings WHERE "
                              "substr(key, 1, ?) = ? ORDER BY key",
                              (len(_DOOR_PREFIX), _DOOR_PREFIX)).fetchall()
        found = {k[len(_DOOR_PREFIX):]: _policy(v) for k, v in rows}
        return {door: p for door, p in found.items() if p is not None}


#: a door's own policy is stored under this prefix and the door's name
_DOOR_PREFIX = "policy:door:"


def _key(door: str | None) -> str:
    return "policy" if door is None else _DOOR_PREFIX + door


def _policy(value: str) -> Policy | None:
    try:
        return Policy(**json.loads(value))
    except (TypeError, ValueError, InputError) as exc:
        # stored by an older version, under looser rules: the next policy in line applies
        log.warning("a stored policy is not valid now and is not applied (%s); set it again",
                    exc)
        return None

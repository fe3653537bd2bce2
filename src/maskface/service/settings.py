"""Settings changed through the API (the policy), persisted so they survive a restart."""

from __future__ import annotations

import json
from pathlib import Path

from maskface.errors import InputError
from maskface.service.config import Policy
from maskface.storage import Database, open_database


class SettingsStore:
    """Key/value JSON settings in the service database.

    The policy set through ``PUT /v1/policy`` overrides the config file's until it is reset
    with ``DELETE /v1/policy``; the file stays the deployment's baseline.
    """

    def __init__(self, db: Database | str | Path):
        self.db = open_database(db)

    def policy(self) -> Policy | None:
        with self.db.transaction(write=False) as tx:
            row = tx.execute("SELECT value FROM service_settings WHERE key = 'policy'").fetchone()
        if row is None:
            return None
        try:
            return Policy(**json.loads(row[0]))
        except (TypeError, ValueError, InputError):
            return None  # a policy stored by an older version: fall back to the file's

    def set_policy(self, policy: Policy) -> None:
        with self.db.transaction() as tx:
            tx.execute("INSERT INTO service_settings (key, value) VALUES ('policy', ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       (json.dumps(policy.to_dict()),))

    def reset_policy(self) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM service_settings WHERE key = 'policy'")

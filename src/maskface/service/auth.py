"""API keys with two roles, stored hashed.

A key looks like ``mf_<key id>_<secret>``. The key id (public, 8 hex digits) finds the row; the
secret (32 random bytes) is stored only as ``sha256(salt || secret)``. A slow KDF such as scrypt
protects low-entropy passwords; these secrets are 256-bit random, so a salted SHA-256 is as safe
and keeps every request cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from maskface.errors import InputError
from maskface.storage import Database, open_database

ADMIN = "admin"
KIOSK = "kiosk"
ROLES = (ADMIN, KIOSK)
#: which roles satisfy a required role: admin may do everything a kiosk may
_GRANTS = {ADMIN: {ADMIN}, KIOSK: {ADMIN, KIOSK}}



@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: str
    label: str
    created: float
    revoked: float | None = None

    @property
    def door(self) -> str:
        """How the access log names the door this key checks people at: its label (e.g.
        ``maskface keys create --role kiosk --label door-1``), else its id."""
        return self.label or self.key_id

    def allows(self, required_role: str) -> bool:
        return self.role in _GRANTS[required_role]

    def to_dict(self) -> dict:
        return {"key_id": self.key_id, "role": self.role, "label": self.label,
                "created": self.created, "revoked": self.revoked}


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


#: a label is a door's name (``door-1``, ``lab east``), not free text
MAX_LABEL_CHARS = 64


def check_label(label: str | None, allow_empty: bool = False) -> str:
    """A key's label, or a door's name (which a kiosk key's label is), trimmed; InputError when
    it is not one printable line of at most :data:`MAX_LABEL_CHARS` characters (it names the
    door in the access log, its filters and the metrics)."""
    label = (label or "").strip()
    if (not label and not allow_empty) or len(label) > MAX_LABEL_CHARS or \
            not label.isprintable():
        raise InputError(f"a door's name (a key's label) must be 1-{MAX_LABEL_CHARS} printable "
                         "characters (no line breaks or tabs)")
    return label


class KeyStore:
    """API keys in the service database."""

    def __init__(self, db: Database | str | Path):
        self.db = open_database(db)

    def create(self, role: str, label: str = "") -> tuple[str, ApiKey]:
        """Make a key; returns the plaintext (shown once, never stored) and its record."""
        if role not in ROLES:
            raise InputError(f"unknown role '{role}'; choose one of: {', '.join(ROLES)}")
        label = check_label(label, allow_empty=True)
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        rec = ApiKey(key_id, role, label, time.time())
        with self.db.transaction() as tx:
            tx.execute("INSERT INTO api_keys (key_id, role, label, salt, digest, created) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (key_id, role, label, salt, _digest(salt, secret), rec.created))
        return f"mf_{key_id}_{secret}", rec

    def verify(self, key: str) -> ApiKey | None:
        """The key's record if ``key`` is valid and not revoked, else ``None``."""
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != "mf":
            return None
        _, key_id, secret = parts
        with self.db.transaction(write=False) as tx:
            row = tx.execute("SELECT role, label, salt, digest, created, revoked FROM api_keys "
                               "WHERE key_id = ?", (key_id,)).fetchone()
        if row is None:
            return None
        role, label, salt, digest, created, revoked = row
        if not hmac.compare_digest(_digest(salt, secret), digest) or revoked is not None:
            return None
        return ApiKey(key_id, role, label, created)

    def list(self) -> list[ApiKey]:
        with self.db.transaction(write=False) as tx:
            rows = tx.execute("SELECT key_id, role, label, created, revoked FROM api_keys "
                                "ORDER BY created").fetchall()
        return [ApiKey(*r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by id; returns whether an active key was revoked."""
        with self.db.transaction() as tx:
            cur = tx.execute("UPDATE api_keys SET revoked = ? WHERE key_id = ? AND "
                               "revoked IS NULL", (time.time(), key_id))
        return cur.rowcount > 0

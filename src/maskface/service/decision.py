"""The access decision: a pure function of the faces seen, the policy and the temperature.

Kept free of I/O so every rule can be tested directly and the service only gathers inputs and
records the outcome. All applicable reasons are returned, not just the first, so the kiosk can
tell a person everything they must fix at once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from maskface.results import Face
from maskface.service.config import Policy

GRANTED = "granted"
DENIED = "denied"

#: reason code -> human-readable message (codes are the stable API)
REASONS = {
    "no_face": "no face found",
    "several_faces": "several faces found: one person at a time",
    "unknown_person": "person not recognised",
    "group_not_allowed": "person is not in a group allowed to enter",
    "no_mask": "a mask is required",
    "mask_incorrect": "mask worn incorrectly: cover nose and mouth",
    "mask_unknown": "mask state could not be determined",
    "temperature_high": "body temperature at or above the threshold",
    "temperature_missing": "no body temperature reading",
}


@dataclass(frozen=True)
class Decision:
    """Outcome of one access check; ``face`` is the one face judged (``None`` if not one)."""

    decision: str
    reasons: tuple[str, ...] = ()
    face: Face | None = field(default=None, compare=False)
    temperature: float | None = None

    @property
    def granted(self) -> bool:
        return self.decision == GRANTED

    def to_dict(self) -> dict[str, Any]:
        ident = self.face.identity if self.face is not None else None
        return {
            "decision": self.decision,
            "granted": self.granted,
            "reasons": [{"code": r, "message": REASONS[r]} for r in self.reasons],
            "person": ident.to_dict() if ident is not None and ident.known else None,
            "mask": self.face.mask.label if self.face is not None and self.face.mask else None,
            "temperature": self.temperature,
        }


def decide(faces: Sequence[Face], policy: Policy, temperature: float | None = None,
           person_groups: Collection[str] = ()) -> Decision:
    """Grant or deny entry.

    Args:
        faces: the faces found in the kiosk image, with ``mask`` and ``identity`` filled in.
        policy: the rules.
        temperature: body temperature in °C, or ``None`` when there is no reading.
        person_groups: groups of the identified person (used when the policy restricts groups).
    """
    if not faces:
        return Decision(DENIED, ("no_face",), None, temperature)
    if len(faces) > 1:
        return Decision(DENIED, ("several_faces",), None, temperature)
    face = faces[0]
    reasons: list[str] = []
    if face.identity is None or not face.identity.known:
        reasons.append("unknown_person")
    elif policy.allowed_groups and not set(policy.allowed_groups) & set(person_groups):
        reasons.append("group_not_allowed")
    if policy.mask_required:
        if face.mask is None:
            reasons.append("mask_unknown")
        elif face.mask.label == "without_mask":
            reasons.append("no_mask")
        elif face.mask.label == "mask_incorrect":
            reasons.append("mask_incorrect")
    if temperature is None:
        if policy.require_temperature:
            reasons.append("temperature_missing")
    elif temperature >= policy.temperature_threshold:
        reasons.append("temperature_high")
    return Decision(DENIED if reasons else GRANTED, tuple(reasons), face, temperature)

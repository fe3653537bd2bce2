"""The access decision: a pure function of the faces seen, the policy and the temperature.

Kept free of I/O so every rule can be tested directly and the service only gathers inputs and
records the outcome. All applicable reasons are returned, not just the first, so the kiosk can
tell a person everything they must fix at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from maskface.results import Face, Liveness, MaskPrediction
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
    "spoof_suspected": "presentation attack suspected: show your own face, not a photo or screen",
    "liveness_unknown": "liveness could not be checked",
    "grey_camera": "liveness cannot be checked on a grey (infrared) camera image: the door "
                   "needs a colour camera",
    "face_too_small": "come closer to the camera",
    "face_blurred": "hold still and look at the camera",
    "face_turned_away": "look straight at the camera",
    "face_too_dark": "step into the light",
    "face_too_bright": "step out of direct light",
    "face_out_of_frame": "step into the middle of the camera's view",
}

#: a second face at least this share of the door face's area is also "at the door"
RIVAL_AREA = 0.5
#: frames of a burst voted over (the best by quality)
BEST_FRAMES = 3
#: a frame's door face belongs to the burst's person when it overlaps the best face this much
TRACK_IOU = 0.3


@dataclass(frozen=True)
class Decision:
    """Outcome of one access check; ``face`` is the one face judged (``None`` if not one)."""

    decision: str
    reasons: tuple[str, ...] = ()
    face: Face | None = field(default=None, compare=False)
    temperature: float | None = None
    #: faces in view that were not judged (background, passers-by)
    ignored: tuple[Face, ...] = field(default=(), compare=False)
    #: multi-frame decisions: per-frame evidence and the votes
    evidence: dict[str, Any] | None = field(default=None, compare=False)

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
            "liveness": (self.face.liveness.to_dict()
                         if self.face is not None and self.face.liveness else None),
            "quality": (self.face.quality.to_dict()
                        if self.face is not None and self.face.quality else None),
            "ignored_faces": [{"box": [round(float(v), 1) for v in f.box]}
                              for f in self.ignored],
            **({"evidence": self.evidence} if self.evidence is not None else {}),
        }


def decision_line(d: dict[str, Any]) -> str:
    """One line for a person reading a decision (its :meth:`Decision.to_dict` form):
    ``GRANTED: Ada, score 0.894 (threshold 0.421, masked-masked)`` or ``DENIED: nobody
    recognised; a mask is required``."""
    p = d["person"]
    who = "nobody recognised" if p is None else (
        f"{p['name']}, score {p['score']:.3f} (threshold {p['threshold']:.3f}, "
        f"{p['condition']})")
    why = "; ".join(r["message"] for r in d["reasons"])
    return f"{d['decision'].upper()}: {who}" + (f"; {why}" if why else "")


def _area(face: Face) -> float:
    return max(face.width, 0.0) * max(face.height, 0.0)


def door_face(faces: Sequence[Face], image_shape: tuple[int, int] | None = None
              ) -> tuple[Face | None, list[Face]]:
    """The person at the door: the largest face, discounted by its distance from the image
    centre (a face at the edge counts up to half as much); returns it and the others."""
    if not faces:
        return None, []
    if image_shape is None:
        weights = [_area(f) for f in faces]
    else:
        h, w = image_shape
        half = np.hypot(w, h) / 2 or 1.0
        weights = []
        for f in faces:
            cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
            off = min(1.0, float(np.hypot(cx - w / 2, cy - h / 2)) / half)
            weights.append(_area(f) * (1 - 0.5 * off))
    i = int(np.argmax(weights))
    return faces[i], [f for j, f in enumerate(faces) if j != i]


def _rivals(face: Face, others: Sequence[Face], policy: Policy) -> list[Face]:
    """Other faces also at the door: big enough and close to the door face's size."""
    return [f for f in others if min(f.width, f.height) >= policy.min_face_size
            and _area(f) >= RIVAL_AREA * _area(face)]


def quality_reasons(face: Face, policy: Policy) -> list[str]:
    """Why this face is not good enough to judge ("come closer", "look at the camera")."""
    reasons = []
    if min(face.width, face.height) < policy.min_face_size:
        reasons.append("face_too_small")
    if policy.quality_required and face.quality is not None:
        reasons += [f"face_{p}" for p in face.quality.problems if p != "too_small"]
    return reasons


def _temperature_reasons(policy: Policy, temperature: float | None) -> list[str]:
    if temperature is None:
        return ["temperature_missing"] if policy.require_temperature else []
    return ["temperature_high"] if temperature >= policy.temperature_threshold else []


def decide(faces: Sequence[Face], policy: Policy, temperature: float | None = None,
           person_groups: Collection[str] = (),
           image_shape: tuple[int, int] | None = None) -> Decision:
    """Grant or deny entry.

    Args:
        faces: the faces found in the kiosk image, with ``mask``, ``identity`` and (when the
            policy needs them) ``liveness`` and ``quality`` filled in.
        policy: the rules.
        temperature: body temperature in °C, or ``None`` when there is no reading.
        person_groups: groups of the identified person (used when the policy restricts groups).
        image_shape: ``(height, width)``, to prefer the face nearest the centre.
    """
    if not faces:
        return Decision(DENIED, ("no_face",), None, temperature)
    if policy.single_person_strict and len(faces) > 1:
        return Decision(DENIED, ("several_faces",), None, temperature)
    face, others = door_face(faces, image_shape)
    if _rivals(face, others, policy):
        return Decision(DENIED, ("several_faces",), None, temperature)
    gate = quality_reasons(face, policy)
    if gate:
        # Identity, mask and liveness are unreliable on such a face: advise, don't guess
        # (the judged face is reported without an identity).
        return Decision(DENIED, tuple(gate + _temperature_reasons(policy, temperature)),
                        replace(face, identity=None), temperature, tuple(others))
    reasons: list[str] = []
    if policy.liveness_required:
        live = face.liveness
        threshold = policy.liveness_threshold
        if live is None:
            reasons.append("liveness_unknown")
        elif live.problem == "grey_frame":
            reasons.append("grey_camera")
        elif live.score < (live.threshold if threshold is None else threshold):
            reasons.append("spoof_suspected")
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
    reasons += _temperature_reasons(policy, temperature)
    return Decision(DENIED if reasons else GRANTED, tuple(reasons), face, temperature,
                    tuple(others))


def _vote(faces: list[Face]) -> Face:
    """One face from several views of the same person: identity by majority (ties: the higher
    mean score); mask by majority and liveness by the mean live score over the frames that
    name that person (all frames when no one is recognised), so the frames that prove a live
    face are the frames that say who it is."""
    best = faces[0]
    ids = Counter(f.identity.person_id if f.identity else None for f in faces)
    def id_key(pid):
        scores = [f.identity.score for f in faces if f.identity and f.identity.person_id == pid]
        return (ids[pid], float(np.mean(scores)) if scores else -1.0)
    pid = max(ids, key=id_key)
    if pid is not None and ids[pid] * 2 <= len(faces):
        pid = None  # no majority for anyone: not recognised
    cands = [f.identity for f in faces if f.identity and f.identity.person_id == pid]
    identity = max(cands, key=lambda i: i.score) if cands else best.identity
    if pid is None and identity is not None and identity.known:
        identity = None
    if pid is not None:
        # Two photos of an enrolled person and one live stranger were granted as the person:
        # identity from the photos, liveness from the stranger.
        faces = [f for f in faces if f.identity and f.identity.person_id == pid]
        best = faces[0]
    masks = [f.mask for f in faces if f.mask is not None]
    mask = None
    if masks:
        labels = Counter(m.label for m in masks)
        label = max(labels, key=lambda k: (labels[k], np.mean([m.probability for m in masks
                                                               if m.label == k])))
        mask = MaskPrediction(label, float(np.mean([m.probability for m in masks
                                                    if m.label == label])),
                              {label: labels[label] / len(masks)})
    lives = [f.liveness for f in faces if f.liveness is not None]
    assessed = [lv for lv in lives if lv.problem is None]
    liveness = None
    if assessed:
        score = float(np.mean([lv.score for lv in assessed]))
        th = assessed[0].threshold
        liveness = Liveness(score, "live" if score >= th else "spoof", th)
    elif lives:  # no frame could be assessed: say why
        liveness = replace(lives[0], score=float(np.mean([lv.score for lv in lives])))
    return replace(best, identity=identity, mask=mask, liveness=liveness)


def decide_burst(frames: Sequence[tuple[Sequence[Face], tuple[int, int]]], policy: Policy,
                 temperature: float | None = None,
                 groups_of: Callable[[int], Collection[str]] = lambda pid: (),
                 prepare: Callable[[dict[int, Face]], None] | None = None) -> Decision:
    """One decision over a burst of frames of the person at the door.

    Each frame's door face is found; the person is tracked as the faces overlapping the
    best-quality one; frames whose face fails the quality gate are dropped; the best
    :data:`BEST_FRAMES` by quality are voted over (identity, mask, liveness) and judged once.
    Only ``quality`` must be filled beforehand: ``prepare({frame: door face})`` is called for
    the chosen frames to fill the rest, so the slow stages run on those frames only.
    ``evidence`` says what every frame showed and which frames were used.
    """
    from maskface.geometry import iou_matrix

    evidence: list[dict[str, Any]] = []
    doors: list[tuple[int, Face, list[Face]]] = []
    crowded = 0
    for i, (faces, shape) in enumerate(frames):
        face, others = door_face(faces, shape)
        row: dict[str, Any] = {"frame": i, "faces": len(faces), "used": False}
        if face is not None:
            rivals = (others if policy.single_person_strict else _rivals(face, others, policy))
            crowded += bool(rivals)
            row.update(quality=round(face.quality.score, 4) if face.quality else None,
                       problems=(["several_faces"] if rivals else [])
                       + quality_reasons(face, policy))
            doors.append((i, face, others))
        evidence.append(row)
    votes: dict[str, Any] = {"used": []}
    if crowded or not doors:
        # A second person in any frame is a second person at the door, as in a single photo:
        # dropping that frame and deciding on the rest let someone in behind the person.
        reason = "several_faces" if crowded else "no_face"
        return Decision(DENIED, (reason,), None, temperature, (),
                        {"frames": evidence, **votes})

    def q(face: Face) -> float:
        return face.quality.score if face.quality is not None else 0.0

    anchor = max(doors, key=lambda d: (not quality_reasons(d[1], policy), q(d[1])))[1]
    track = [d for d in doors
             if iou_matrix(anchor.box[None, :4], d[1].box[None, :4])[0, 0] >= TRACK_IOU]
    good = [d for d in track if not quality_reasons(d[1], policy)]
    if not good:
        # Nothing usable: judge the best frame, which yields its quality advice.
        good = [max(track, key=lambda d: q(d[1]))]
    best = sorted(good, key=lambda d: -q(d[1]))[:BEST_FRAMES]
    if prepare is not None:
        prepare({i: f for i, f, _ in best})
    for i, f, _ in best:
        evidence[i].update(used=True, person=f.identity.person_id if f.identity else None,
                           mask=f.mask.label if f.mask else None,
                           liveness=round(f.liveness.score, 4) if f.liveness else None)
    votes["used"] = [i for i, _, _ in best]
    face = _vote([d[1] for d in best])
    pid = face.identity.person_id if face.identity is not None and face.identity.known else None
    groups = groups_of(pid) if pid is not None else ()
    d = decide([face], policy, temperature, groups)
    if d.face is None or d.face.identity is None:
        # gated: identified by no one, so no frame says who it was either
        for i, _, _ in best:
            evidence[i]["person"] = None
    return replace(d, ignored=tuple(best[0][2]), evidence={"frames": evidence, **votes})

"""Service configuration: the access policy, upload limits, models and storage, from TOML.

A config file is optional; every setting has a default. Example (all keys optional)::

    [policy]
    mask_required = true
    temperature_threshold = 37.5   # °C; a reading at or above it denies entry
    require_temperature = false    # deny when no reading is available
    match_threshold = 0.45         # open-set identify threshold (omit: the gallery's default)
    allowed_groups = []            # empty: every enrolled person; else only these groups
    liveness_required = true       # deny faces the liveness check scores as spoof
    liveness_threshold = 0.5       # live score needed (omit: the shipped model's threshold)
    single_person_strict = false   # true: any second face in view denies (several_faces)
    min_face_size = 64             # px; smaller faces are background (or "come closer")
    quality_required = true        # blurred / turned-away / badly lit faces get advice, not a guess

    [limits]
    max_upload_mb = 10
    max_pixels = 40_000_000
    max_photos = 10

    [models]
    detector = "yunet"
    detector_input_size = 640      # YuNet's working resolution (longest side)
    classifier = "default"         # ONNX path, "default" or "none"
    embedder = "default"           # maskface.recognize.create_embedder name or ONNX path
    workers = 1                    # images at once: 1 = one model set on every core (lowest
                                   # latency); N = N model sets, cores/N threads each (throughput)

    [temperature]
    source = "push"                # "push" (sensor POSTs readings), "simulated" or "none"
    max_age_s = 10

    [snapshots]
    enabled = false
    dir = "snapshots"              # relative to the database's folder

    [retention]                    # checked at start and every hour; 0 = keep for ever
    events_days = 0                # access events older than this are deleted
    snapshots_days = 30            # snapshot photos older than this are deleted (events kept)
"""

from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from maskface.errors import InputError
from maskface.io.image import MAX_DECODABLE_PIXELS
from maskface.locations import default_db_path, is_url

TEMPERATURE_SOURCES = ("push", "simulated", "none")

#: bounds on a person's groups, which a policy's ``allowed_groups`` lists: names, not free text
MAX_GROUPS, MAX_GROUP_CHARS = 50, 64


def check_groups(groups) -> tuple[str, ...]:
    """Groups trimmed, unique and sorted (a comma separates groups, as in a person's groups);
    InputError when there are too many, or one is too long or holds control characters. One
    rule for a person's groups and a policy's: ``"staff "`` in a policy admitted no one."""
    out = sorted({g.strip() for raw in groups for g in str(raw).split(",") if g.strip()})
    if len(out) > MAX_GROUPS:
        raise InputError(f"at most {MAX_GROUPS} groups, not {len(out)}")
    for g in out:
        if len(g) > MAX_GROUP_CHARS or not g.isprintable():
            shown = g if len(g) <= 20 else g[:20] + "…"
            raise InputError(f"group {shown!r} must be at most {MAX_GROUP_CHARS} printable "
                             "characters")
    return tuple(out)


@dataclass(frozen=True)
class Policy:
    """Who may enter: the rules :func:`maskface.service.decision.decide` applies."""

    mask_required: bool = True
    temperature_threshold: float = 37.5
    require_temperature: bool = False
    #: open-set threshold for identification, every mask condition; ``None``: each
    #: condition's (the gallery's calibration, else the model's; gallery.thresholds)
    match_threshold: float | None = None
    #: empty: everyone enrolled may enter; otherwise only members of these groups
    allowed_groups: tuple[str, ...] = ()
    #: deny with ``spoof_suspected`` when the face's live score is under the threshold
    liveness_required: bool = True
    #: live score needed; ``None`` uses the shipped model's threshold
    liveness_threshold: float | None = None
    #: ``True``: any second face in view denies (``several_faces``); ``False``: the person at
    #: the door is judged and faces in the background are reported as ignored
    single_person_strict: bool = False
    #: faces whose shorter box side is under this (px) are background, or "come closer"
    min_face_size: float = 64.0
    #: faces too blurred, turned away or badly lit are denied with advice, not identified
    quality_required: bool = True

    def __post_init__(self):
        if not 30.0 <= self.temperature_threshold <= 45.0:
            raise InputError(
                f"policy.temperature_threshold {self.temperature_threshold} °C is not a plausible"
                " body temperature threshold (30-45)")
        # at or below 0 a stranger's unrelated face matches someone: recognition is off
        if self.match_threshold is not None and not 0.0 < self.match_threshold <= 1.0:
            raise InputError(f"policy.match_threshold {self.match_threshold} is outside (0, 1]:"
                             " at or below 0 anyone passes for someone enrolled")
        if self.liveness_threshold is not None and not 0.0 <= self.liveness_threshold <= 1.0:
            raise InputError(f"policy.liveness_threshold {self.liveness_threshold} is outside "
                             "[0, 1]")
        if not 0.0 <= self.min_face_size <= 4096:
            raise InputError(f"policy.min_face_size {self.min_face_size} is outside 0-4096 px")
        try:
            groups = check_groups(self.allowed_groups)
        except InputError as exc:
            raise InputError(f"policy.allowed_groups: {exc}") from None
        object.__setattr__(self, "allowed_groups", groups)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["allowed_groups"] = list(self.allowed_groups)
        return d


@dataclass(frozen=True)
class Limits:
    """Bounds on what a client may upload."""

    max_upload_mb: float = 10.0
    max_pixels: int = 40_000_000
    max_photos: int = 10

    def __post_init__(self):
        # NaN fails every comparison, so each range is written as "not inside"
        if not 0.01 <= self.max_upload_mb <= 1024:
            raise InputError(f"limits.max_upload_mb {self.max_upload_mb} is outside 0.01-1024")
        if not 10_000 <= self.max_pixels <= MAX_DECODABLE_PIXELS:
            raise InputError(f"limits.max_pixels {self.max_pixels} is outside "
                             f"10,000-{MAX_DECODABLE_PIXELS:,} (the image decoder's own "
                             "bound against decompression bombs)")
        if not 1 <= self.max_photos <= 100:
            raise InputError(f"limits.max_photos {self.max_photos} is outside 1-100")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass(frozen=True)
class Models:
    #: YuNet, not the library's default RetinaFace@1024: a kiosk photo shows one close face,
    #: where the fastest detector loses nothing
    detector: str = "yunet"
    #: the detector's working resolution (longest side); 640 px finds faces down to ~20 px in a
    #: 1280 px frame at a third of the cost of 1024 px
    detector_input_size: int = 640
    classifier: str = "default"
    embedder: str = "default"
    workers: int = 1

    def __post_init__(self):
        if not 160 <= self.detector_input_size <= 4096:
            raise InputError(f"models.detector_input_size {self.detector_input_size} is outside"
                             " 160-4096")
        if not 1 <= self.workers <= 64:
            raise InputError(f"models.workers {self.workers} is outside 1-64")


@dataclass(frozen=True)
class Temperature:
    source: str = "push"
    max_age_s: float = 10.0
    #: simulated source only: mean and spread of readings in °C, and its seed
    simulated_mean: float = 36.6
    simulated_sd: float = 0.3
    seed: int = 0

    def __post_init__(self):
        if self.source not in TEMPERATURE_SOURCES:
            raise InputError(f"temperature.source '{self.source}': choose one of "
                             f"{', '.join(TEMPERATURE_SOURCES)}")
        if not 0 < self.max_age_s <= 86_400:
            raise InputError(f"temperature.max_age_s {self.max_age_s} is outside 0-86,400 s")
        if not 30.0 <= self.simulated_mean <= 45.0 or not 0.0 <= self.simulated_sd <= 5.0:
            raise InputError(f"temperature.simulated_mean {self.simulated_mean} / simulated_sd "
                             f"{self.simulated_sd}: expected 30-45 °C and 0-5 °C")


@dataclass(frozen=True)
class Snapshots:
    enabled: bool = False
    dir: str = "snapshots"


@dataclass(frozen=True)
class Retention:
    """How long the access log and its snapshot photos are kept (days; 0: for ever). Snapshots
    are face photos: keep them no longer than an investigation needs."""

    events_days: float = 0.0
    snapshots_days: float = 30.0

    def __post_init__(self):
        for key in ("events_days", "snapshots_days"):
            if not 0 <= getattr(self, key) <= 100_000:  # also NaN, which TOML allows
                raise InputError(f"retention.{key} {getattr(self, key)} is outside 0-100,000 "
                                 "days (0 keeps for ever)")


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the app needs; ``db`` holds the gallery, the event log and the API keys: an
    SQLite file or a ``postgresql://`` URL (shared by replicas); by default the same store as
    ``maskface enroll`` (:func:`~maskface.locations.default_db_path`)."""

    db: Path | str = field(default_factory=default_db_path)
    policy: Policy = field(default_factory=Policy)
    limits: Limits = field(default_factory=Limits)
    models: Models = field(default_factory=Models)
    temperature: Temperature = field(default_factory=Temperature)
    snapshots: Snapshots = field(default_factory=Snapshots)
    retention: Retention = field(default_factory=Retention)

    @property
    def snapshot_dir(self) -> Path:
        d = Path(self.snapshots.dir)
        if d.is_absolute():
            return d
        return (Path.cwd() if is_url(self.db) else Path(self.db).resolve().parent) / d

    def with_db(self, db: str | Path) -> ServiceConfig:
        return replace(self, db=str(db) if is_url(db) else Path(db))


_SECTIONS = {"policy": Policy, "limits": Limits, "models": Models, "temperature": Temperature,
             "snapshots": Snapshots, "retention": Retention}


_EXPECTED = {bool: "true or false", float: "a number", int: "a whole number", str: "a string"}


def _check_type(section: str, key: str, value: Any, hint: Any) -> None:
    """A TOML value of the field's type, or a one-line error: ``mask_required = "false"`` is a
    (truthy) string, and must not silently require masks."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):  # X | None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        ok, want = (isinstance(value, list) and all(isinstance(v, str) for v in value),
                    "a list of strings")
    elif hint in _EXPECTED:
        want = _EXPECTED[hint]
        if hint is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif hint is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, hint)
    else:
        return
    if not ok:
        raise InputError(f"config: [{section}] {key} = {value!r}: expected {want}")


def _section(cls, values: Any, name: str):
    if not isinstance(values, dict):
        raise InputError(f"config: [{name}] must be a table")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"config: unknown key(s) in [{name}]: {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        _check_type(name, key, value, hints[key])
    try:
        return cls(**values)
    except TypeError as exc:
        raise InputError(f"config: [{name}]: {exc}") from None


def config_from_dict(data: dict[str, Any], base: ServiceConfig | None = None) -> ServiceConfig:
    """Build a config from parsed TOML (unknown sections or keys are errors, not ignored)."""
    cfg = base or ServiceConfig()
    unknown = sorted(set(data) - set(_SECTIONS) - {"db"})
    if unknown:
        raise InputError(f"config: unknown section(s): {', '.join(unknown)}; "
                         f"known: db, {', '.join(_SECTIONS)}")
    updates: dict[str, Any] = {k: _section(cls, data[k], k)
                               for k, cls in _SECTIONS.items() if k in data}
    if "db" in data:
        if not isinstance(data["db"], str) or not data["db"]:
            raise InputError(f"config: db = {data['db']!r}: expected an SQLite file path or a "
                             "postgresql:// URL (a string)")
        updates["db"] = str(data["db"]) if is_url(data["db"]) else Path(data["db"])
    return replace(cfg, **updates)


def load_config(path: str | Path | None) -> ServiceConfig:
    """Read a TOML config file; ``None`` gives the defaults."""
    if path is None:
        return ServiceConfig()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML ({exc})") from None
    cfg = config_from_dict(data)
    if "db" in data and not is_url(cfg.db) and not cfg.db.is_absolute():
        cfg = cfg.with_db(path.resolve().parent / cfg.db)
    return cfg

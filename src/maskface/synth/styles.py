"""What a synthetic mask looks like: type, colour, pattern and how it is worn."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from maskface.errors import InputError

#: mask types the project draws itself
MASK_TYPES = ("surgical", "n95", "kn95", "cloth")
#: how the mask sits: correctly, pulled under the nose, or pulled down onto the chin
WEARS = ("correct", "nose_exposed", "chin_only")
PATTERNS = ("solid", "stripes", "dots", "check")

#: named colours, BGR 0..255
COLOURS: dict[str, tuple[int, int, int]] = {
    "blue": (226, 190, 128),  # the pale blue of surgical masks
    "green": (178, 196, 120),
    "white": (238, 238, 236),
    "black": (40, 38, 38),
    "grey": (165, 162, 160),
    "navy": (88, 48, 30),
    "red": (50, 45, 180),
    "pink": (190, 170, 235),
    "beige": (170, 200, 220),
    "olive": (60, 110, 105),
    "teal": (140, 130, 40),
    "purple": (120, 60, 100),
    "yellow": (70, 200, 235),
}
#: colours each type comes in (real masks are not any colour)
TYPE_COLOURS: dict[str, tuple[str, ...]] = {
    "surgical": ("blue", "green", "white", "black"),
    "n95": ("white", "grey"),
    "kn95": ("white", "black", "grey", "pink"),
    "cloth": ("black", "navy", "grey", "red", "pink", "beige", "olive", "teal", "purple",
              "white", "blue"),
}


@dataclass(frozen=True)
class MaskStyle:
    """A mask to draw. ``template`` names a template of a :class:`TemplateSet` instead of the
    procedural drawing (then ``mask_type``/``colour`` only label it). ``seed`` varies the small
    details (fabric noise, pattern phase) so two masks of one style are not pixel-identical."""

    mask_type: str = "surgical"
    colour: str = "blue"
    pattern: str = "solid"
    wear: str = "correct"
    template: str | None = None
    seed: int = 0
    #: colour of the second pattern element (stripes, dots, check); default: a contrasting one
    accent: str | None = None

    def __post_init__(self) -> None:
        if self.template is None and self.mask_type not in MASK_TYPES:
            raise InputError(f"unknown mask type '{self.mask_type}'; "
                             f"choose from: {', '.join(MASK_TYPES)}")
        if self.wear not in WEARS:
            raise InputError(f"unknown wear '{self.wear}'; choose from: {', '.join(WEARS)}")
        if self.pattern not in PATTERNS:
            raise InputError(f"unknown pattern '{self.pattern}'; "
                             f"choose from: {', '.join(PATTERNS)}")
        for c in (None if self.template else self.colour, self.accent):
            if c is not None and c not in COLOURS:
                raise InputError(f"unknown colour '{c}'; choose from: {', '.join(COLOURS)}")

    @property
    def worn_correctly(self) -> bool:
        return self.wear == "correct"

    @property
    def name(self) -> str:
        """Short label, e.g. ``cloth-navy-dots`` or ``template:surgical_blue``."""
        if self.template:
            base = f"template:{self.template}"
        else:
            base = f"{self.mask_type}-{self.colour}"
            if self.pattern != "solid":
                base += f"-{self.pattern}"
        return base if self.worn_correctly else f"{base} ({self.wear})"

    def bgr(self) -> np.ndarray:
        return np.array(COLOURS[self.colour], np.float32) / 255.0

    def accent_bgr(self) -> np.ndarray:
        if self.accent is not None:
            return np.array(COLOURS[self.accent], np.float32) / 255.0
        base = self.bgr()
        # A light base gets a dark accent and vice versa.
        return np.array(COLOURS["navy"] if base.mean() > 0.55 else COLOURS["white"],
                        np.float32) / 255.0

    def with_wear(self, wear: str) -> MaskStyle:
        return replace(self, wear=wear)


def random_style(rng: np.random.Generator, types: tuple[str, ...] = MASK_TYPES,
                 incorrect_rate: float = 0.0,
                 templates: Mapping[str, tuple[str, str]] | None = None) -> MaskStyle:
    """Draw a style: a type from ``types`` (or, when ``templates`` maps template names to their
    ``(type, colour)`` labels, one of those templates),
    a colour that type comes in, a pattern for cloth, and with probability ``incorrect_rate``
    an incorrect wear (nose exposed or chin only, equally likely)."""
    wear = "correct"
    if rng.random() < incorrect_rate:
        wear = str(rng.choice(WEARS[1:]))
    seed = int(rng.integers(0, 2**31 - 1))
    if templates:
        name = str(rng.choice(sorted(templates)))
        mtype, colour = templates[name]
        return MaskStyle(mtype, colour, "solid", wear, template=name, seed=seed)
    mtype = str(rng.choice(types))
    colour = str(rng.choice(TYPE_COLOURS[mtype]))
    pattern = "solid"
    accent = None
    if mtype == "cloth" and rng.random() < 0.5:
        pattern = str(rng.choice(PATTERNS[1:]))
        accent = str(rng.choice([c for c in TYPE_COLOURS["cloth"] if c != colour]))
    return MaskStyle(mtype, colour, pattern, wear, seed=seed, accent=accent)


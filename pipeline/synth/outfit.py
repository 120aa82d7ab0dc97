"""What a person looks like: features that stay with the identity (skin, hair) and outfits that
change completely between sessions (colours, textures, sleeve length, lower garment, shoes, hats,
bags). Colours are RGB in [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SKIN_TONES = (
    (0.96, 0.80, 0.69),
    (0.92, 0.74, 0.60),
    (0.85, 0.65, 0.50),
    (0.76, 0.55, 0.40),
    (0.62, 0.43, 0.30),
    (0.50, 0.33, 0.22),
    (0.38, 0.25, 0.17),
)
HAIR_COLOURS = (
    (0.07, 0.06, 0.05),
    (0.16, 0.11, 0.07),
    (0.30, 0.19, 0.10),
    (0.70, 0.55, 0.32),
    (0.55, 0.54, 0.52),
    (0.45, 0.18, 0.08),
)
HAIR_STYLES = ("short", "medium", "long", "cropped")
CLOTH_COLOURS = (
    (0.08, 0.08, 0.09),
    (0.92, 0.92, 0.90),
    (0.50, 0.50, 0.52),
    (0.12, 0.16, 0.35),
    (0.80, 0.72, 0.55),
    (0.55, 0.50, 0.32),
    (0.38, 0.24, 0.14),
    (0.75, 0.12, 0.12),
    (0.15, 0.35, 0.75),
    (0.15, 0.50, 0.22),
    (0.90, 0.78, 0.15),
    (0.92, 0.48, 0.12),
    (0.45, 0.20, 0.55),
    (0.90, 0.55, 0.65),
    (0.10, 0.50, 0.50),
    (0.30, 0.45, 0.65),
)
UPPER_PATTERNS = ("plain", "hstripes", "vstripes", "checks", "print")
LOWER_PATTERNS = ("plain", "plain", "plain", "checks")  # trousers and skirts are mostly plain
SLEEVES = ("short", "long")
LOWER_KINDS = ("trousers", "shorts", "skirt")
HATS = ("none", "cap", "beanie")
BAGS = ("none", "backpack", "shoulder")
MIN_COLOUR_DISTANCE = 0.35  # RGB distance between garments of two outfits of one person
MIN_HAIR_SKIN_DISTANCE = 0.3


@dataclass(frozen=True)
class IdentityLook:
    """Appearance that does not change with clothes."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_style: str


@dataclass(frozen=True)
class Outfit:
    upper: tuple[float, float, float]
    upper_second: tuple[float, float, float]  # stripes/checks/print colour
    upper_pattern: str
    pattern_period: float  # metres
    sleeve: str
    lower: tuple[float, float, float]
    lower_second: tuple[float, float, float]
    lower_pattern: str
    lower_kind: str
    shoes: tuple[float, float, float]
    hat: str
    hat_colour: tuple[float, float, float]
    bag: str
    bag_colour: tuple[float, float, float]

    def label(self, index: int) -> str:
        """CCVID-style clothes label (meaningful within one person): u/l/s index the outfit's
        upper, lower and shoes, c the headwear, a the accessory (bag)."""
        return f"u{index}_l{index}_s{index}_c{HATS.index(self.hat)}_a{BAGS.index(self.bag)}"


def _jitter(rng: np.random.Generator, colour, amount: float = 0.06) -> tuple[float, float, float]:
    values = np.clip(np.asarray(colour) + rng.uniform(-amount, amount, 3), 0.02, 0.98)
    return tuple(float(v) for v in values)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def sample_identity_look(rng: np.random.Generator) -> IdentityLook:
    skin = _jitter(rng, _pick(rng, SKIN_TONES), 0.03)
    # Hair clearly unlike the skin: at re-ID resolution a skin-coloured back of the head reads
    # as a face, and pose estimators then take a back view for a frontal one.
    while True:
        hair = _jitter(rng, _pick(rng, HAIR_COLOURS), 0.03)
        if np.linalg.norm(np.subtract(hair, skin)) >= MIN_HAIR_SKIN_DISTANCE:
            break
    return IdentityLook(skin=skin, hair=hair, hair_style=_pick(rng, HAIR_STYLES))


def _contrasting(rng: np.random.Generator, colour, strength: float) -> tuple[float, float, float]:
    """A pattern colour clearly unlike `colour`, mixed back towards it by 1 - `strength`
    (full-contrast harlequin checks look unlike clothes and confuse pose estimators)."""
    while True:
        second = _jitter(rng, _pick(rng, CLOTH_COLOURS))
        if np.linalg.norm(np.subtract(second, colour)) > 0.45:
            mixed = strength * np.asarray(second) + (1 - strength) * np.asarray(colour)
            return tuple(float(v) for v in mixed)


def _sample_outfit(rng: np.random.Generator) -> Outfit:
    upper = _jitter(rng, _pick(rng, CLOTH_COLOURS))
    lower = _jitter(rng, _pick(rng, CLOTH_COLOURS))
    return Outfit(
        upper=upper,
        upper_second=_contrasting(rng, upper, 0.8),
        upper_pattern=_pick(rng, UPPER_PATTERNS),
        pattern_period=float(rng.uniform(0.05, 0.12)),
        sleeve=_pick(rng, SLEEVES),
        lower=lower,
        lower_second=_contrasting(rng, lower, 0.55),
        lower_pattern=_pick(rng, LOWER_PATTERNS),
        lower_kind=_pick(rng, LOWER_KINDS),
        shoes=_jitter(rng, _pick(rng, CLOTH_COLOURS[:8])),
        hat=_pick(rng, HATS) if rng.random() < 0.45 else "none",
        hat_colour=_jitter(rng, _pick(rng, CLOTH_COLOURS)),
        bag=_pick(rng, BAGS) if rng.random() < 0.55 else "none",
        bag_colour=_jitter(rng, _pick(rng, CLOTH_COLOURS)),
    )


def outfits_differ(a: Outfit, b: Outfit) -> bool:
    """A cloth change, not a near-duplicate: both garments change colour clearly, and at least
    two of texture, sleeve length, lower garment kind, hat and bag change too."""
    colours_apart = all(
        np.linalg.norm(np.subtract(x, y)) >= MIN_COLOUR_DISTANCE
        for x, y in ((a.upper, b.upper), (a.lower, b.lower))
    )
    changes = sum(
        (
            a.upper_pattern != b.upper_pattern,
            a.sleeve != b.sleeve,
            a.lower_kind != b.lower_kind,
            a.hat != b.hat,
            a.bag != b.bag,
        )
    )
    return colours_apart and changes >= 2


def sample_outfits(rng: np.random.Generator, count: int) -> list[Outfit]:
    """`count` outfits of one person, each a complete change from every other."""
    outfits: list[Outfit] = []
    while len(outfits) < count:
        candidate = _sample_outfit(rng)
        if all(outfits_differ(candidate, other) for other in outfits):
            outfits.append(candidate)
    return outfits

"""Model variants behind the ablation tables (paper Tables 3–5): which branches are on, which
graph network, which pose. Shared by `ablate` (naming run folders) and `report` (placing runs)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.config import GRAPHS, POSES

# Each branch combination (appearance, shape, gait): its run-folder suffix ("" = the full model)
# and its name in the tables.
_BRANCHES: dict[tuple[bool, bool, bool], tuple[str, str]] = {
    (True, True, True): ("", "appearance + shape + gait"),
    (True, False, False): ("appearance-only", "appearance only"),
    (False, True, True): ("shape-gait", "shape + gait"),
    (True, True, False): ("no-gait", "appearance + shape"),
    (True, False, True): ("no-shape", "appearance + gait"),
    (False, True, False): ("shape-only", "shape only"),
    (False, False, True): ("gait-only", "gait only"),
}


@dataclass(frozen=True)
class Variant:
    """The model switches of `ModelConfig` that the ablation tables vary."""

    use_appearance: bool = True
    use_shape: bool = True
    use_gait: bool = True
    graph: str = "gat"
    pose: str = "3d"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Variant:
        """From metrics.json's `variant` object (or any mapping with the five switches)."""
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values]
        if missing:
            raise ValueError(f"variant lacks {', '.join(missing)}")
        variant = cls(
            use_appearance=bool(values["use_appearance"]),
            use_shape=bool(values["use_shape"]),
            use_gait=bool(values["use_gait"]),
            graph=str(values["graph"]),
            pose=str(values["pose"]),
        )
        if variant.graph not in GRAPHS or variant.pose not in POSES:
            raise ValueError(f"variant has graph={variant.graph!r}, pose={variant.pose!r}")
        return variant

    @classmethod
    def from_model_config(cls, model) -> Variant:
        return cls.from_mapping({f.name: getattr(model, f.name) for f in dataclasses.fields(cls)})

    def apply(self, model):
        """A copy of `model` (a ModelConfig) with these switches set."""
        return dataclasses.replace(model, **dataclasses.asdict(self))

    @property
    def branches(self) -> tuple[bool, bool, bool]:
        return (self.use_appearance, self.use_shape, self.use_gait)

    @property
    def has_branch(self) -> bool:
        return any(self.branches)

    @property
    def uses_skeleton(self) -> bool:
        return self.use_shape or self.use_gait

    def canonical(self) -> Variant:
        """Graph and pose only matter when a skeleton branch is on; an appearance-only model is
        the same model whatever they say, so they are reset to the paper's choice."""
        if self.uses_skeleton:
            return self
        return dataclasses.replace(self, graph="gat", pose="3d")

    def suffix(self) -> str:
        """Run-folder suffix: "" for the full model, e.g. "no-gait", "gcn", "appearance-only"."""
        if not self.has_branch:
            raise ValueError("a model needs at least one branch")
        variant = self.canonical()
        parts = [_BRANCHES[variant.branches][0]]
        if variant.graph != "gat":
            parts.append(variant.graph)
        if variant.pose != "3d":
            parts.append(variant.pose)
        return "-".join(part for part in parts if part)

    def run_name(self, base: str) -> str:
        suffix = self.suffix()
        return f"{base}-{suffix}" if suffix else base

    def describe(self) -> str:
        """Human-readable, e.g. "appearance + gait, GAT, 3D pose"."""
        if not self.has_branch:
            return "no branch"
        text = _BRANCHES[self.branches][1]
        if self.uses_skeleton:
            text += f", {self.graph.upper()}, {self.pose.upper()} pose"
        return text

    def cli_flags(self) -> str:
        """The `asgl-pipeline ablate` options that train this variant."""
        flags = [
            flag
            for flag, on in (
                ("--no-appearance", self.use_appearance),
                ("--no-shape", self.use_shape),
                ("--no-gait", self.use_gait),
            )
            if not on
        ]
        variant = self.canonical()
        if variant.graph != "gat":
            flags.append(f"--graph {variant.graph}")
        if variant.pose != "3d":
            flags.append(f"--pose {variant.pose}")
        return " ".join(flags)


FULL = Variant()
APPEARANCE_ONLY = Variant(use_shape=False, use_gait=False)
SHAPE_GAIT = Variant(use_appearance=False)
APPEARANCE_SHAPE = Variant(use_gait=False)
APPEARANCE_GAIT = Variant(use_shape=False)
GCN = Variant(graph="gcn")
POSE_2D = Variant(pose="2d")

# Every variant Tables 3–5 need, in the order `ablate --all` trains them.
TABLE_VARIANTS: tuple[Variant, ...] = (
    FULL,
    APPEARANCE_ONLY,
    SHAPE_GAIT,
    APPEARANCE_SHAPE,
    APPEARANCE_GAIT,
    GCN,
    POSE_2D,
)

"""The model variants behind the ablation tables (paper Tables 3–5), in the order `ablate --all`
trains them. `Variant` itself (the switches, run-folder names, descriptions) lives beside
`ModelConfig` in `pipeline.config`."""

from __future__ import annotations

from pipeline.config import Variant

__all__ = ["Variant"]

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

"""Tiny model settings shared by the tests: every branch present, widths small enough for CPU."""

from __future__ import annotations

import dataclasses

from pipeline.config import ModelConfig

TINY_MODEL_FIELDS = {
    "backbone_depth": 18,
    "refine_widths": (4, 8),
    "gat_channels": 8,
    "gat_heads": 2,
    "stgat_channels": (4, 8),
    "stgat_heads": 2,
    "temporal_kernel": 3,
    "fusion_dim": 6,
}


def tiny_model_config(**changes) -> ModelConfig:
    return dataclasses.replace(ModelConfig(**TINY_MODEL_FIELDS), **changes)


# Settings for tests that train and evaluate whole runs through the stages (config overrides).
TINY_RUN_MODEL = {
    "backbone_depth": 18,
    "refine_widths": (8, 8, 16),
    "gat_channels": 16,
    "gat_heads": 1,
    "stgat_channels": (8, 16),
    "stgat_heads": 1,
    "temporal_kernel": 3,
    "fusion_dim": 16,
}

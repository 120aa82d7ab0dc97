"""Fusion calibration on the validation identities (beyond the paper, `train.fusion_calibration`).

The Adaptive Fusion Module learns its branch weights on the training identities, where every
branch can be perfect: appearance memorises the training people's outfits. Nothing in training
tells it that a branch fails on people it has never seen (on the benchmark's ground-truth control
the full model fell 12–17 CC R-1 below shape + gait, docs/EXPERIMENTS.md). After training, each branch's
weight is therefore scaled by a factor γ_k from a small grid (w'_k ∝ γ_k · w_k per sample, the
module's `branch_prior` = log γ) chosen by the validation score the run already uses for model
selection, on identities held out of training, never on the test set. γ = 1 for every branch is
the learned fusion itself and wins ties, so calibration changes nothing unless it helps there.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.config import Config
from pipeline.data.dataset import ClipSource
from pipeline.evaluation import eval_loader, model_inputs, normalised_means, source_labels
from pipeline.metrics import validation_map

CALIBRATION_RULES = ("off", "val")
SCALES = (0.0, 0.25, 0.5, 1.0)  # per branch; candidates are normalised to a largest scale of 1


@dataclass(frozen=True)
class Calibration:
    """The chosen per-branch scales and the validation scores behind the choice."""

    scales: dict[str, float]  # branch name → γ
    learned_score: float  # validation mAP of the learned fusion (every γ = 1)
    score: float  # validation mAP with `scales`
    val_ids: int
    candidates: int

    @property
    def prior(self) -> torch.Tensor:
        """The fusion module's `branch_prior`: log γ (−inf drops a branch)."""
        return log_prior(tuple(self.scales.values()))

    def record(self) -> dict:
        """What metrics.json and the checkpoint keep of it."""
        return {
            "rule": "val",
            "scales": dict(self.scales),
            "val_map_learned": round(self.learned_score, 4),
            "val_map": round(self.score, 4),
            "val_ids": self.val_ids,
            "candidates": self.candidates,
        }


def log_prior(scales: tuple[float, ...]) -> torch.Tensor:
    """γ per branch → the fusion's `branch_prior` (log γ; −inf drops a branch)."""
    return torch.tensor([math.log(g) if g > 0 else -math.inf for g in scales])


def candidate_scales(branches: int) -> list[tuple[float, ...]]:
    """Every γ tuple from `SCALES` whose largest entry is 1 (γ and c·γ weight alike), the
    learned fusion (all ones) first."""
    ones = (1.0,) * branches
    grid = [g for g in itertools.product(SCALES, repeat=branches) if max(g) == 1.0 and g != ones]
    return [ones, *grid]


@torch.no_grad()
def clip_projections(model, sources: list[ClipSource], config: Config, device: torch.device):
    """Every evaluation clip of `sources` (CAL's rule, as evaluation cuts them) through the model
    up to the fusion: projections (C, K, D) and the tracklet index of each clip (C,)."""
    projected, indices = [], []
    for frames, joints, index in eval_loader(sources, config, model.needs_frames, device):
        output = model(*model_inputs(model, frames, joints, device))
        projected.append(output.projected.float().cpu())
        indices.append(index)
    return torch.cat(projected), torch.cat(indices)


@torch.no_grad()
def fused_features(fusion, projected: torch.Tensor, index: torch.Tensor, tracklets: int):
    """(N, D) L2-normalised tracklet features from clip projections through the fusion module
    (eval mode) with its current `branch_prior`, as evaluation averages them."""
    embedding, _ = fusion.combine(projected.to(fusion.bn.weight.device))
    sums = torch.zeros(tracklets, embedding.shape[1], dtype=torch.float64)
    sums.index_add_(0, index, embedding.double().cpu())
    return normalised_means(sums, torch.bincount(index, minlength=tracklets))


def choose_scales(
    fusion, projected: torch.Tensor, index: torch.Tensor, labels, chunk_size: int = 256
) -> tuple[tuple[float, ...], list[float], int]:
    """Score every candidate of `candidate_scales` on clip projections (C, K, D) of tracklets
    with `labels`: (the best γ, every candidate's score, its position), scored by
    `metrics.validation_map` as model selection scores. Leaves the best prior set on `fusion`."""
    tracklets = len(labels.pids)

    def score(scales: tuple[float, ...]) -> float:
        fusion.branch_prior.copy_(log_prior(scales))
        features = fused_features(fusion, projected, index, tracklets)
        return validation_map(features, labels, chunk_size)

    candidates = candidate_scales(projected.shape[1])
    scores = [score(c) for c in candidates]
    best = int(np.argmax(scores))  # the first maximum: the learned fusion on a tie
    fusion.branch_prior.copy_(log_prior(candidates[best]))
    return candidates[best], scores, best


def calibrate_fusion(
    model, sources: list[ClipSource], config: Config, device: torch.device
) -> Calibration:
    """Choose the branch scales on the validation `sources` (`choose_scales`); leaves the
    chosen prior set on the model, in eval mode."""
    model.eval()
    projected, index = clip_projections(model, sources, config, device)
    labels = source_labels(sources)
    scales, scores, best = choose_scales(
        model.fusion, projected, index, labels, config.eval.chunk_size
    )
    return Calibration(
        dict(zip(model.branch_names, scales, strict=True)),
        scores[0],
        scores[best],
        len(set(labels.pids)),
        len(scores),
    )

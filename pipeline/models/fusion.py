"""Adaptive Fusion Module (paper §3.3): project each branch embedding into a common space,
concatenate, a 1×1 convolution over the stacked embeddings estimates per-sample branch weights
(softmax over branches), the weighted sum of the projections goes through a BatchNorm → f. With
`refine` (the paper's mutual refinement, `model.fusion_refine`) a second 1×1 convolution over the
stack first lets every embedding take from the others. `alone` scores each branch's projection
before any refinement, so a branch's own figure holds only what that branch computed.
`branch_dropout` (beyond the paper, `model.branch_dropout`, 0 = off) drops each branch from a
training sample's weighting with that probability (never all of them; the weights renormalise
over the rest), so the fused embedding must also work without any one branch.
`branch_prior` (beyond the paper, `train.fusion_calibration`) is a log-scale per branch added to
the weighting's logits in eval mode only, so w'_k ∝ γ_k · w_k: zeros (γ = 1, the learned fusion)
until a run calibrates it on its validation identities (pipeline/calibration.py) after training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def projection(in_channels: int, out_channels: int) -> nn.Sequential:
    """Linear + BN + ReLU into the common latent space."""
    return nn.Sequential(
        nn.Linear(in_channels, out_channels, bias=False),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(inplace=True),
    )


class AdaptiveFusion(nn.Module):
    """[(B, in_k)] × K branch embeddings → (fused (B, dim), weights (B, K))."""

    def __init__(
        self,
        in_channels: tuple[int, ...],
        dim: int = 512,
        refine: bool = False,
        branch_dropout: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= branch_dropout < 1.0:
            raise ValueError(f"branch_dropout must be in [0, 1), got {branch_dropout}")
        self.branch_dropout = branch_dropout
        if not in_channels:
            raise ValueError("the fusion module needs at least one branch")
        self.branches = len(in_channels)
        self.projections = nn.ModuleList(projection(c, dim) for c in in_channels)
        # The convolution sees all K stacked embeddings at once (kernel 1, K·dim channels), so each
        # branch's weight depends on the others. Zero init: training starts from an equal-weight
        # average instead of a random preference. One branch needs no weighting at all.
        self.weighting = None
        if self.branches > 1:
            self.weighting = nn.Conv1d(self.branches * dim, self.branches, kernel_size=1)
            nn.init.zeros_(self.weighting.weight)
            nn.init.zeros_(self.weighting.bias)
        self.bn = nn.BatchNorm1d(dim)
        # A buffer, so the scored checkpoint carries it and export / embed / search use it.
        self.register_buffer("branch_prior", torch.zeros(self.branches))
        # `model.fusion_refine`, the paper's "optimise the embeddings in parallel by making them
        # refer to each other": a 1×1 convolution over the stacked embeddings adds to each one what
        # it takes from all of them (zero init: it starts as no refinement), before the weighting.
        self.refine = None
        if refine and self.branches > 1:
            width = self.branches * dim
            self.refine = nn.Conv1d(width, width, kernel_size=1)
            nn.init.zeros_(self.refine.weight)
            nn.init.zeros_(self.refine.bias)

    def project(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        """[(B, in_k)] × K → (B, K, dim): every branch in the common latent space."""
        if len(embeddings) != self.branches:
            raise ValueError(f"expected {self.branches} branch embeddings, got {len(embeddings)}")
        return torch.stack([p(e) for p, e in zip(self.projections, embeddings, strict=True)], 1)

    def alone(self, projected: torch.Tensor) -> torch.Tensor:
        """(B, K, dim) → (B, K, dim): for each branch, the fused embedding f that a one-hot
        weight on that branch would give (the output BN with its running statistics, whatever
        the mode, so nothing is updated). With one branch it is exactly f in eval mode, so each
        branch can be scored on its own on the same footing as the fusion."""
        bn = self.bn
        flat = projected.reshape(-1, projected.shape[-1])
        alone = F.batch_norm(
            flat, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps
        )
        return alone.view_as(projected)

    def forward(self, embeddings: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.combine(self.project(embeddings))

    def refined(self, projected: torch.Tensor) -> torch.Tensor:
        """(B, K, dim) → (B, K, dim): each embedding plus what it takes from the stack (the
        projections themselves without `refine`)."""
        if self.refine is None:
            return projected
        stacked = projected.reshape(projected.shape[0], -1, 1)
        return (stacked + self.refine(stacked)).view_as(projected)

    def combine(self, projected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, dim) projections → (fused (B, dim), weights (B, K))."""
        b = projected.shape[0]
        projected = self.refined(projected)
        if self.weighting is None:
            weights = projected.new_ones(b, 1)
        else:
            logits = self.weighting(projected.reshape(b, -1, 1)).squeeze(-1)  # (B, K)
            if not self.training:
                logits = logits + self.branch_prior.to(logits.dtype)
            weights = self.drop_branches(logits).softmax(dim=1)
        fused = (weights.unsqueeze(-1) * projected).sum(dim=1)
        return self.bn(fused), weights

    def drop_branches(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, K) weighting logits with each branch dropped (−inf) per sample with probability
        `branch_dropout` in training; a row that would lose every branch keeps one at random."""
        if not (self.training and self.branch_dropout > 0):
            return logits
        keep = torch.rand_like(logits) >= self.branch_dropout
        none_kept = ~keep.any(dim=1)
        if none_kept.any():
            rescue = torch.randint(logits.shape[1], (int(none_kept.sum()),), device=logits.device)
            keep[none_kept.nonzero().squeeze(1), rescue] = True
        return logits.masked_fill(~keep, float("-inf"))

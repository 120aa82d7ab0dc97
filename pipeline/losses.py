"""Training losses (paper §3.5, SPEC §5): L = λ1·CE + λ2·batch-hard triplet (0.7, 0.3, margin 0.3).

The triplet distance is 1 − cosine similarity of L2-normalised embeddings (as CAL's triplet loss),
the same geometry retrieval ranks by.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class LossParts(NamedTuple):
    total: torch.Tensor
    cross_entropy: torch.Tensor
    triplet: torch.Tensor


def batch_hard_triplet(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.3):
    """Mean over anchors of max(0, d(a, hardest positive) − d(a, hardest negative) + margin).

    Anchors with no other sample of their identity, or no sample of another, are left out; a
    batch with no usable anchor gives 0 (still part of the graph, so backward works)."""
    normalised = F.normalize(embeddings.float(), p=2, dim=1)
    distances = 1.0 - normalised @ normalised.t()
    same = labels[:, None] == labels[None, :]
    other_self = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positives = same & other_self
    negatives = ~same
    usable = positives.any(dim=1) & negatives.any(dim=1)
    if not usable.any():
        return distances.sum() * 0.0
    hardest_positive = distances.masked_fill(~positives, float("-inf")).amax(dim=1)
    hardest_negative = distances.masked_fill(~negatives, float("inf")).amin(dim=1)
    hinge = F.relu(hardest_positive - hardest_negative + margin)
    return hinge[usable].mean()


class ReIDLoss(torch.nn.Module):
    """λ1 · cross-entropy(logits, labels) + λ2 · batch-hard triplet(embeddings, labels)
    [+ λ3 · mean over branches of the batch-hard triplet of each branch's projected feature].

    The third term is beyond the paper (`train.branch_loss`, λ3; 0 = the paper; the default 0.3
    was chosen by measurement, README): it makes every branch separate identities on its own, so a branch that fits the training
    identities fast (appearance: the clothes of a training batch) cannot leave the others without
    gradient once the fused loss is low."""

    def __init__(
        self,
        ce_weight: float = 0.7,
        triplet_weight: float = 0.3,
        margin: float = 0.3,
        branch_weight: float = 0.0,
    ):
        super().__init__()
        self.ce_weight, self.triplet_weight, self.margin = ce_weight, triplet_weight, margin
        self.branch_weight = branch_weight

    @classmethod
    def from_config(cls, train_cfg) -> ReIDLoss:
        return cls(
            train_cfg.ce_weight,
            train_cfg.triplet_weight,
            train_cfg.triplet_margin,
            train_cfg.branch_loss,
        )

    def forward(self, embeddings, logits, labels, branches=None) -> LossParts:
        """`branches`: (B, K, D) per-branch projections (`ASGLOutput.projected`), for λ3."""
        ce = F.cross_entropy(logits.float(), labels)
        triplet = batch_hard_triplet(embeddings, labels, self.margin)
        total = self.ce_weight * ce + self.triplet_weight * triplet
        if self.branch_weight and branches is not None and branches.shape[1] > 1:
            per_branch = [
                batch_hard_triplet(branches[:, k], labels, self.margin)
                for k in range(branches.shape[1])
            ]
            total = total + self.branch_weight * torch.stack(per_branch).mean()
        return LossParts(total, ce, triplet)

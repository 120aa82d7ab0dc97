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


def clothes_adversarial_loss(
    logits: torch.Tensor, clothes: torch.Tensor, positive: torch.Tensor, epsilon: float = 0.1
) -> torch.Tensor:
    """CAL's adversarial term (Gu et al., CVPR 2022, as Simple-CCReID computes it): the log
    probability of each clothes class is taken against the *other identities'* clothes only, so
    the loss is low when an embedding sits as close to every outfit of its own person as to the
    one it wears, and far from everybody else's. `logits` (B, C) scaled cosine logits, `clothes`
    (B,) the worn class, `positive` (B, C) 1 for the clothes of the sample's identity."""
    negative = 1.0 - positive
    exp_logits = logits.exp()
    log_prob = logits - torch.log((exp_logits * negative).sum(1, keepdim=True) + exp_logits)
    worn = F.one_hot(clothes, logits.shape[1]).float()
    target = (1 - epsilon) * worn + epsilon * positive / positive.sum(1, keepdim=True)
    return (-target * log_prob).sum(1).mean()


class ClothesAdversary(torch.nn.Module):
    """Beyond the paper (`train.clothes_loss`, 0 = off): CAL's clothes classifier and its
    adversarial loss on the fused embedding. The clothes prototypes learn to tell every training
    outfit apart from the embedding (detached: this part trains only them); the adversarial term,
    against fixed prototypes, trains the network so that an embedding does not tell a person's
    outfits apart. Without it, a branch that recognises the training people by their clothes
    (appearance) satisfies the identity loss and carries no cue across a change of clothes.

    `clothes_identity[c]` is the identity class of training outfit c; `clothes_class[g]` maps the
    data's global clothes index g to its training outfit (−1 for outfits seen only in testing)."""

    def __init__(
        self,
        dim: int,
        clothes_identity: list[int],
        clothes_class: list[int],
        scale: float = 16.0,
        epsilon: float = 0.1,
    ):
        super().__init__()
        if not clothes_identity:
            raise ValueError("the clothes adversary needs at least one training outfit")
        self.scale, self.epsilon = scale, epsilon
        self.prototypes = torch.nn.Parameter(torch.randn(len(clothes_identity), dim) * 0.001)
        self.register_buffer("clothes_identity", torch.tensor(clothes_identity, dtype=torch.long))
        self.register_buffer("clothes_class", torch.tensor(clothes_class, dtype=torch.long))

    def forward(self, embeddings, clothes, labels) -> tuple[torch.Tensor, torch.Tensor]:
        """→ (clothes classification loss of the prototypes, adversarial loss of the network)."""
        worn = self.clothes_class[clothes]
        if (worn < 0).any():
            raise ValueError("a training clip wears clothes that are not a training outfit")
        features = F.normalize(embeddings.float(), dim=1)
        prototypes = F.normalize(self.prototypes, dim=1)
        classify = F.cross_entropy(self.scale * features.detach() @ prototypes.t(), worn)
        positive = (self.clothes_identity[None, :] == labels[:, None]).float()
        logits = self.scale * features @ prototypes.detach().t()
        return classify, clothes_adversarial_loss(logits, worn, positive, self.epsilon)


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
        clothes_weight: float = 0.0,
        adversary: ClothesAdversary | None = None,
        clothes_start: int = 0,
    ):
        super().__init__()
        self.ce_weight, self.triplet_weight, self.margin = ce_weight, triplet_weight, margin
        self.branch_weight = branch_weight
        self.clothes_weight = clothes_weight
        self.adversary = adversary  # its prototypes are parameters: optimised and checkpointed
        self.clothes_start = clothes_start
        self.adversarial = True  # off in the epochs before clothes_start (set_epoch)

    @classmethod
    def from_config(cls, train_cfg, adversary: ClothesAdversary | None = None) -> ReIDLoss:
        return cls(
            train_cfg.ce_weight,
            train_cfg.triplet_weight,
            train_cfg.triplet_margin,
            train_cfg.branch_loss,
            train_cfg.clothes_loss,
            adversary,
            train_cfg.clothes_start,
        )

    def set_epoch(self, epoch: int) -> None:
        """The adversarial term acts from epoch `clothes_start` (0-based) on."""
        self.adversarial = epoch >= self.clothes_start

    def forward(self, embeddings, logits, labels, branches=None, clothes=None) -> LossParts:
        """`branches`: (B, K, D) per-branch projections (`ASGLOutput.projected`), for λ3;
        `clothes`: (B,) global clothes indices, for the clothes adversary."""
        ce = F.cross_entropy(logits.float(), labels)
        triplet = batch_hard_triplet(embeddings, labels, self.margin)
        total = self.ce_weight * ce + self.triplet_weight * triplet
        if self.branch_weight and branches is not None and branches.shape[1] > 1:
            per_branch = [
                batch_hard_triplet(branches[:, k], labels, self.margin)
                for k in range(branches.shape[1])
            ]
            total = total + self.branch_weight * torch.stack(per_branch).mean()
        if self.adversary is not None and clothes is not None:
            classify, adversarial = self.adversary(embeddings, clothes, labels)
            total = total + classify
            if self.adversarial:
                total = total + self.clothes_weight * adversarial
        return LossParts(total, ce, triplet)

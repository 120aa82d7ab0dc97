"""Gait sub-branch ST-GAT (paper §3.2.3): Spatial-Temporal Attention (STA) blocks over the
skeleton sequence, then a global average pool over frames and joints → f_g.

One STA block (Eq. 5 and 6):
  S heads, each with per-frame self-attention A_s over the joints, restricted to the joints within
  graph distance D of each joint (Eq. 6); the head's 1×1 convolution W_s (the multi-head learning
  module) transforms the features; the heads' outputs W_s·G·A_s are averaged, then BN + ReLU (σ).
  A temporal convolution (kernel K, padded, ST-GCN's spatial-temporal connection) aggregates
  consecutive frames; BN, residual, ReLU.
By default (`model.stgat_prior`, chosen on validation) the skeleton's partitioned adjacency with
learnable edge importance is added beside the attention: Eq. 5's other reading (ST-GCN's
adjacency weighted by edge importance), and (`model.stgat_attention_gate`, also chosen on
validation) the attention term is scaled by a learnable gate that starts at 0, so a block starts
as its ST-GCN prior; docs/ARCHITECTURE.md maps each equation to the code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ModelConfig
from pipeline.models.blocks import GaitStack, PartitionedGraphConv, SpatialTemporalUnit, gait_stack
from pipeline.models.graph import SkeletonGraph


class STABlock(SpatialTemporalUnit):
    """(N, C_in, T, V) → (N, C_out, T, V)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int,
        neighbourhood: torch.Tensor,
        temporal_kernel: int = 9,
        dropout: float = 0.0,
        root: bool = False,
        prior: torch.Tensor | None = None,
        attention_gate: bool = False,
    ):
        super().__init__()
        self.heads, self.out_channels = heads, out_channels
        self.key_channels = max(1, out_channels // heads)
        self.register_buffer("neighbourhood", neighbourhood.bool(), persistent=False)
        self.query = nn.Conv2d(in_channels, heads * self.key_channels, 1)
        self.key = nn.Conv2d(in_channels, heads * self.key_channels, 1)
        self.value = nn.Conv2d(in_channels, heads * out_channels, 1)  # W_s of every head at once
        self.add_temporal(in_channels, out_channels, temporal_kernel, dropout)
        # Beyond the paper: each joint's own features through their own 1×1 transform, added to
        # the attention's convex mix of its neighbours (as ST-GCN's root subset), so a block can
        # form differences between a joint and its neighbours (bone vectors).
        self.root = nn.Conv2d(in_channels, out_channels, 1) if root else None
        # Beyond Eq. 5 as written (`model.stgat_prior`): the skeleton's own adjacency beside the
        # learned one — ST-GCN's spatial partition (root, nearer, farther subsets) with learnable
        # edge importance, the "adjacency matrix of the head" weighted by "edge importance" of the
        # paper's wording — so attention refines a skeleton graph instead of learning it from
        # nothing within 12 epochs (docs/ARCHITECTURE.md, "ST-GAT").
        self.prior = (
            None if prior is None else PartitionedGraphConv(in_channels, out_channels, prior)
        )
        # Beyond the paper (`model.stgat_attention_gate`): the attention's share starts at 0
        # (as ReZero's residual scale), so the block starts as its prior and the gradient decides
        # how much attention to add.
        self.attention_gate = nn.Parameter(torch.zeros(1)) if attention_gate else None

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame attention A_s over joints: (N, C_in, T, V) → (N, S, T, V_i, V_j), each row
        summing to 1 over the joints j within hop distance D of i and exactly 0 elsewhere."""
        n, _, t, v = x.shape
        q = self.query(x).view(n, self.heads, self.key_channels, t, v)
        k = self.key(x).view(n, self.heads, self.key_channels, t, v)
        scores = torch.einsum("nsctv,nsctw->nstvw", q, k) / math.sqrt(self.key_channels)
        scores = scores.masked_fill(~self.neighbourhood, float("-inf"))
        return F.softmax(scores, dim=-1)

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        attention = self.attention(x)
        values = self.value(x).view(n, self.heads, self.out_channels, t, v)
        # Eq. 5: average over heads of W_s · G · A_s (σ follows in the unit's BN + ReLU)
        spatial = torch.einsum("nsctw,nstvw->nctv", values, attention) / self.heads
        if self.attention_gate is not None:
            spatial = self.attention_gate * spatial
        if self.root is not None:
            spatial = spatial + self.root(x)
        if self.prior is not None:
            spatial = spatial + self.prior(x)
        return spatial


def stgat_branch(
    in_channels: int, cfg: ModelConfig, graph: SkeletonGraph = SkeletonGraph()
) -> GaitStack:
    """ST-GAT (B, T, V, C) → f_g (B, cfg.stgat_channels[-1]): one STA block per width, each
    attending within `cfg.hop_distance` hops of the skeleton graph."""
    return gait_stack(
        in_channels,
        cfg,
        STABlock,
        heads=cfg.stgat_heads,
        neighbourhood=graph.hop_mask(cfg.hop_distance),
        root=cfg.stgat_root,
        prior=graph.spatial_partition() if cfg.stgat_prior else None,
        # the gate only makes sense beside the prior: without it a closed gate leaves the block
        # nothing, so `stgat_prior = false` alone gives Eq. 5 as written
        attention_gate=cfg.stgat_attention_gate and cfg.stgat_prior,
    )

"""Gait sub-branch ST-GAT (paper §3.2.3): Spatial-Temporal Attention (STA) blocks over the
skeleton sequence, then a global average pool over frames and joints → f_g.

One STA block (Eq. 5 and 6):
  S heads, each with per-frame self-attention A_s over the joints, restricted to the joints within
  graph distance D of each joint (Eq. 6); the head's 1×1 convolution W_s (the multi-head learning
  module) transforms the features; the heads' outputs W_s·G·A_s are averaged, then BN + ReLU (σ).
  A temporal convolution (kernel K, padded, ST-GCN's spatial-temporal connection) aggregates
  consecutive frames; BN, residual, ReLU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.skeleton import EDGES, NUM_JOINTS, hop_distances


def hop_mask(max_hops: int, num_joints: int = NUM_JOINTS, edges=EDGES) -> torch.Tensor:
    """(V, V) bool: True where the shortest skeleton path between i and j is ≤ max_hops (Eq. 6)."""
    if max_hops < 1:
        raise ValueError(f"hop_distance must be ≥ 1, got {max_hops}")
    return torch.from_numpy(hop_distances(num_joints, edges) <= max_hops)


class TemporalConv(nn.Module):
    """Convolution along time only (kernel K × 1, 'same' padding), BN, dropout."""

    def __init__(self, channels: int, kernel_size: int = 9, dropout: float = 0.0):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"temporal_kernel must be odd and ≥ 1 (same padding), got {kernel_size}"
            )
        padding = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(channels, channels, (kernel_size, 1), padding=(padding, 0))
        self.bn = nn.BatchNorm2d(channels)
        self.dropout = nn.Dropout(dropout, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.bn(self.conv(x)))


def residual_projection(in_channels: int, out_channels: int) -> nn.Module:
    if in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))


class STABlock(nn.Module):
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
    ):
        super().__init__()
        self.heads, self.out_channels = heads, out_channels
        self.key_channels = max(1, out_channels // heads)
        self.register_buffer("neighbourhood", neighbourhood.bool(), persistent=False)
        self.query = nn.Conv2d(in_channels, heads * self.key_channels, 1)
        self.key = nn.Conv2d(in_channels, heads * self.key_channels, 1)
        self.value = nn.Conv2d(in_channels, heads * out_channels, 1)  # W_s of every head at once
        self.spatial_bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.temporal = TemporalConv(out_channels, temporal_kernel, dropout)
        self.residual = residual_projection(in_channels, out_channels)
        # Beyond the paper: each joint's own features through their own 1×1 transform, added to
        # the attention's convex mix of its neighbours (as ST-GCN's root subset), so a block can
        # form differences between a joint and its neighbours (bone vectors).
        self.root = nn.Conv2d(in_channels, out_channels, 1) if root else None

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame attention A_s over joints: (N, C_in, T, V) → (N, S, T, V_i, V_j), each row
        summing to 1 over the joints j within hop distance D of i and exactly 0 elsewhere."""
        n, _, t, v = x.shape
        q = self.query(x).view(n, self.heads, self.key_channels, t, v)
        k = self.key(x).view(n, self.heads, self.key_channels, t, v)
        scores = torch.einsum("nsctv,nsctw->nstvw", q, k) / math.sqrt(self.key_channels)
        scores = scores.masked_fill(~self.neighbourhood, float("-inf"))
        return F.softmax(scores, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        attention = self.attention(x)
        values = self.value(x).view(n, self.heads, self.out_channels, t, v)
        # Eq. 5: average over heads of W_s · G · A_s, then σ
        spatial = torch.einsum("nsctw,nstvw->nctv", values, attention) / self.heads
        if self.root is not None:
            spatial = spatial + self.root(x)
        spatial = self.relu(self.spatial_bn(spatial))
        return self.relu(self.temporal(spatial) + self.residual(x))


class STGATGaitBranch(nn.Module):
    """(B, T, V, C) node features → f_g (B, channels[-1])."""

    def __init__(
        self,
        in_channels: int,
        channels: tuple[int, ...] = (128, 256),
        heads: int = 4,
        hop_distance: int = 3,
        temporal_kernel: int = 9,
        dropout: float = 0.0,
        num_joints: int = NUM_JOINTS,
        edges=EDGES,
        root: bool = False,
    ):
        super().__init__()
        if not channels:
            raise ValueError("stgat_channels must name at least one block width")
        neighbourhood = hop_mask(hop_distance, num_joints, edges)
        widths = (in_channels, *channels)
        self.blocks = nn.ModuleList(
            STABlock(c_in, c_out, heads, neighbourhood, temporal_kernel, dropout, root)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.out_channels = channels[-1]

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        x = nodes.permute(0, 3, 1, 2)  # (B, C, T, V)
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=(2, 3))  # global average pool over T and V

"""Graph-convolution counterparts of the shape and gait sub-branches (paper Table 4):
GCN with the normalised fixed adjacency for shape, ST-GCN (Yan et al., 2018) with its spatial
partition strategy for gait. Same inputs, outputs and pooling as `gat.py` / `stgat.py`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.models.stgat import TemporalConv, residual_projection
from pipeline.skeleton import EDGES, NUM_JOINTS, adjacency, hop_distances

NECK = 1  # ST-GCN's gravity centre for OpenPose-style skeletons is the neck


def normalised_adjacency(num_joints: int = NUM_JOINTS, edges=EDGES) -> torch.Tensor:
    """Kipf & Welling's D^-1/2 (A + I) D^-1/2, (V, V) float32."""
    adj = adjacency(num_joints, edges, self_loops=True)
    inv_sqrt_degree = 1.0 / np.sqrt(adj.sum(axis=1))
    return torch.from_numpy(
        (adj * inv_sqrt_degree[:, None] * inv_sqrt_degree[None, :]).astype(np.float32)
    )


def spatial_partition(
    num_joints: int = NUM_JOINTS, edges=EDGES, center: int = NECK
) -> torch.Tensor:
    """ST-GCN's 'spatial' partition, (3, V, V), exactly as its `Graph(strategy='spatial')` code
    builds it. The 1-hop neighbourhood with self-loops is column-normalised by degree (A·D^-1), then
    split into: the root itself; the neighbours j at the same or a greater hop distance from the
    gravity centre than the root i; the neighbours nearer the centre. Entry [k, j, i] weights the
    message j → i (ST-GCN's einsum 'nkctv,kvw->nctw')."""
    hops = hop_distances(num_joints, edges)
    adj = (hops <= 1).astype(np.float32)
    normalised = adj / adj.sum(axis=0, keepdims=True)  # ST-GCN's normalize_digraph
    to_center = hops[:, center]
    subsets = np.zeros((3, num_joints, num_joints), dtype=np.float32)
    for i in range(num_joints):
        for j in range(num_joints):
            if j == i:
                subsets[0, j, i] = normalised[j, i]
            elif hops[j, i] == 1:
                subset = 1 if to_center[j] >= to_center[i] else 2
                subsets[subset, j, i] = normalised[j, i]
    return torch.from_numpy(subsets)


class GCNShapeBranch(nn.Module):
    """(B, T, V, C) node features → f_s (B, channels): `layers` graph convolutions
    X' = Â X W (ReLU between), global max pool over joints, temporal average."""

    def __init__(
        self,
        in_channels: int,
        channels: int = 512,
        layers: int = 2,
        num_joints: int = NUM_JOINTS,
        edges=EDGES,
    ):
        super().__init__()
        if layers < 1:
            raise ValueError(f"the shape GCN needs at least one layer, got {layers}")
        self.out_channels = channels
        self.register_buffer("adjacency", normalised_adjacency(num_joints, edges), persistent=False)
        widths = (in_channels,) + (channels,) * layers
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.activation = nn.ReLU(inplace=True)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        b, t, v, c = nodes.shape
        x = nodes.reshape(b * t, v, c)
        for index, layer in enumerate(self.layers):
            x = torch.einsum("ij,njc->nic", self.adjacency, layer(x))
            if index < len(self.layers) - 1:
                x = self.activation(x)
        return x.amax(dim=1).view(b, t, -1).mean(dim=1)


class STGCNBlock(nn.Module):
    """ST-GCN unit: partitioned graph convolution (with ST-GCN's learnable edge importance), then
    BN, ReLU, temporal convolution, BN, dropout; residual; ReLU. (N, C_in, T, V) → (N, C_out, T, V)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        partition: torch.Tensor,
        temporal_kernel: int = 9,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.subsets, self.out_channels = partition.shape[0], out_channels
        self.register_buffer("partition", partition.float(), persistent=False)
        self.edge_importance = nn.Parameter(torch.ones_like(partition))
        self.graph_conv = nn.Conv2d(in_channels, out_channels * self.subsets, 1)
        self.spatial_bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.temporal = TemporalConv(out_channels, temporal_kernel, dropout)
        self.residual = residual_projection(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        features = self.graph_conv(x).view(n, self.subsets, self.out_channels, t, v)
        spatial = torch.einsum("nkctv,kvw->nctw", features, self.partition * self.edge_importance)
        spatial = self.relu(self.spatial_bn(spatial))
        return self.relu(self.temporal(spatial) + self.residual(x))


class STGCNGaitBranch(nn.Module):
    """(B, T, V, C) node features → f_g (B, channels[-1])."""

    def __init__(
        self,
        in_channels: int,
        channels: tuple[int, ...] = (128, 256),
        temporal_kernel: int = 9,
        dropout: float = 0.0,
        num_joints: int = NUM_JOINTS,
        edges=EDGES,
        center: int = NECK,
    ):
        super().__init__()
        if not channels:
            raise ValueError("stgat_channels must name at least one block width")
        partition = spatial_partition(num_joints, edges, center)
        widths = (in_channels, *channels)
        self.blocks = nn.ModuleList(
            STGCNBlock(c_in, c_out, partition, temporal_kernel, dropout)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.out_channels = channels[-1]

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        x = nodes.permute(0, 3, 1, 2)
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=(2, 3))

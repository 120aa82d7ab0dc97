"""Graph-convolution counterparts of the shape and gait sub-branches (paper Table 4):
GCN with the normalised fixed adjacency for shape, ST-GCN (Yan et al., 2018) with its spatial
partition strategy for gait. Same inputs, outputs and pooling as `gat.py` / `stgat.py` (the
stacks in `blocks.py`); only the graph layer differs.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.config import ModelConfig
from pipeline.models.blocks import (
    GaitStack,
    ShapeStack,
    SpatialTemporalUnit,
    gait_stack,
    partitioned_messages,
)
from pipeline.models.graph import SkeletonGraph


class GCNShapeBranch(ShapeStack):
    """(B, T, V, C) node features → f_s (B, channels): `layers` graph convolutions
    X' = Â X W (ReLU between), global max pool over joints, temporal average."""

    def __init__(
        self,
        in_channels: int,
        channels: int = 512,
        layers: int = 2,
        graph: SkeletonGraph = SkeletonGraph(),
    ):
        if layers < 1:
            raise ValueError(f"the shape GCN needs at least one layer, got {layers}")
        widths = (in_channels,) + (channels,) * layers
        linears = [nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        super().__init__(linears, nn.ReLU(inplace=True), channels)
        self.register_buffer("adjacency", graph.normalised_adjacency(), persistent=False)

    def propagate(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,njc->nic", self.adjacency, layer(x))


class STGCNBlock(SpatialTemporalUnit):
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
        self.add_temporal(in_channels, out_channels, temporal_kernel, dropout)

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        return partitioned_messages(self.graph_conv(x), self.partition * self.edge_importance)


def stgcn_branch(
    in_channels: int, cfg: ModelConfig, graph: SkeletonGraph = SkeletonGraph()
) -> GaitStack:
    """ST-GCN's gait branch (B, T, V, C) → (B, cfg.stgat_channels[-1]): one ST-GCN unit over the
    graph's spatial partition per width."""
    return gait_stack(in_channels, cfg, STGCNBlock, partition=graph.spatial_partition())

"""Building blocks the graph branches share (as mmaction2's ST-GCN keeps its units in one place):
the temporal convolution and residual of an ST-GCN unit, the unit itself around a spatial layer,
and the two branch stacks — shape (graph layers per frame, max pool over joints) and gait
(spatial-temporal units, average pool over frames and joints) — each parameterised by its layer,
so GAT and GCN variants differ only in that layer.

Submodule names are those the branches had before they shared these classes, so checkpoints
keep loading, and layers are created in the same order, so seeded initialisation is unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from pipeline.config import ModelConfig


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


def partitioned_messages(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """ST-GCN's spatial aggregation: (N, K·C, T, V) features, one C-wide slice per partition
    subset, each subset's messages weighted by its (V, V) adjacency (`weights` (K, V, V), entry
    [k, j, i] weighting j → i) and summed over the subsets → (N, C, T, V)."""
    n, _, t, v = features.shape
    subsets = weights.shape[0]
    per_subset = features.view(n, subsets, -1, t, v)
    return torch.einsum("nkctv,kvw->nctw", per_subset, weights)


class PartitionedGraphConv(nn.Module):
    """ST-GCN's spatial graph convolution: a 1×1 transform per subset of the spatial partition,
    messages weighted by the subset's fixed adjacency times a learnable edge importance."""

    def __init__(self, in_channels: int, out_channels: int, partition: torch.Tensor):
        super().__init__()
        self.register_buffer("partition", partition.float(), persistent=False)
        self.edge_importance = nn.Parameter(torch.ones_like(partition))
        self.graph_conv = nn.Conv2d(in_channels, out_channels * partition.shape[0], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return partitioned_messages(self.graph_conv(x), self.partition * self.edge_importance)


class SpatialTemporalUnit(nn.Module):
    """ST-GCN's unit around a spatial graph layer: spatial (`aggregate`, the subclass's), BN,
    ReLU, temporal convolution, residual, ReLU. (N, C_in, T, V) → (N, C_out, T, V).

    A subclass creates its spatial layer's parameters, then calls `add_temporal` (so the spatial
    weights are drawn from the random stream first, as they always were)."""

    def add_temporal(
        self, in_channels: int, out_channels: int, temporal_kernel: int, dropout: float
    ) -> None:
        self.spatial_bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.temporal = TemporalConv(out_channels, temporal_kernel, dropout)
        self.residual = residual_projection(in_channels, out_channels)

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, T, V) → (N, C_out, T, V): each joint's mix of its graph neighbours."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = self.relu(self.spatial_bn(self.aggregate(x)))
        return self.relu(self.temporal(spatial) + self.residual(x))


class GaitStack(nn.Module):
    """(B, T, V, C) node features → f_g (B, channels[-1]): one unit per width (`unit(c_in,
    c_out)`), then a global average pool over frames and joints."""

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        unit: Callable[[int, int], nn.Module],
    ):
        super().__init__()
        if not channels:
            raise ValueError("stgat_channels must name at least one block width")
        widths = (in_channels, *channels)
        self.blocks = nn.ModuleList(
            unit(c_in, c_out) for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.out_channels = channels[-1]

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        x = nodes.permute(0, 3, 1, 2)  # (B, C, T, V)
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=(2, 3))  # global average pool over T and V


def gait_stack(
    in_channels: int, cfg: ModelConfig, unit: Callable[..., nn.Module], **spatial
) -> GaitStack:
    """The gait branch `cfg` asks for, built of `unit`s (`unit(c_in, c_out, temporal_kernel=…,
    dropout=…, **spatial)`, `spatial` being the settings of its spatial layer)."""
    make = functools.partial(
        unit, temporal_kernel=cfg.temporal_kernel, dropout=cfg.dropout, **spatial
    )
    return GaitStack(in_channels, tuple(cfg.stgat_channels), make)


class ShapeStack(nn.Module):
    """(B, T, V, C) node features → f_s (B, out_channels): graph layers applied to every frame
    (`propagate`, the subclass's; `activation` between layers), a global max pool over joints
    (Eq. 4), a temporal average."""

    def __init__(self, layers: Sequence[nn.Module], activation: nn.Module, out_channels: int):
        super().__init__()
        self.out_channels = out_channels
        self.layers = nn.ModuleList(layers)
        self.activation = activation

    def propagate(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One graph layer on (N, V, C) frame features."""
        raise NotImplementedError

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        b, t, v, c = nodes.shape
        x = nodes.reshape(b * t, v, c)
        for index, layer in enumerate(self.layers):
            x = self.propagate(layer, x)
            if index < len(self.layers) - 1:
                x = self.activation(x)
        frame_shape = x.amax(dim=1)  # Eq. 4: global max pool over joints
        return frame_shape.view(b, t, -1).mean(dim=1)  # temporal average

"""Shape sub-branch (paper §3.2.2): graph attention layers over the 14-joint skeleton, global max
pool over joints (Eq. 4), temporal average.

The graph is small and fixed, so attention is computed densely over all (i, j) joint pairs and
masked to the skeleton's neighbourhoods: one batched matrix product instead of a scatter over an
edge list. `DenseGATConv` uses `torch_geometric.nn.GATConv`'s parameter names and layout, so the
two agree on the same weights (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.blocks import ShapeStack
from pipeline.models.graph import SkeletonGraph


class DenseGATConv(nn.Module):
    """Velickovic graph attention on a dense (V, V) neighbourhood mask.

    e_ij = LeakyReLU_0.2(a_dst·W x_i + a_src·W x_j), α_ij = softmax over neighbours j of i,
    x'_i = ‖ or mean over heads of Σ_j α_ij W x_j, + bias.
    Input (N, V, in_channels) → (N, V, heads·out_channels) if `concat` else (N, V, out_channels).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        attention_dropout: float = 0.0,
    ):
        super().__init__()
        self.heads, self.out_channels, self.concat = heads, out_channels, concat
        self.negative_slope = negative_slope
        self.attention_dropout = attention_dropout
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        self.bias = nn.Parameter(torch.zeros(heads * out_channels if concat else out_channels))
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)

    def attention(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h (N, V, H, F) projected features, mask (V, V) → α (N, H, V_i, V_j)."""
        score_src = (h * self.att_src).sum(-1)  # (N, V, H): a_src · W x_j
        score_dst = (h * self.att_dst).sum(-1)  # (N, V, H): a_dst · W x_i
        scores = score_dst.transpose(1, 2).unsqueeze(-1) + score_src.transpose(1, 2).unsqueeze(-2)
        scores = F.leaky_relu(scores, self.negative_slope)
        scores = scores.masked_fill(~mask, float("-inf"))  # non-neighbours get exactly zero weight
        alpha = scores.softmax(dim=-1)
        return F.dropout(alpha, self.attention_dropout, self.training)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, v, _ = x.shape
        h = self.lin(x).view(n, v, self.heads, self.out_channels)
        alpha = self.attention(h, mask)
        out = torch.einsum("nhij,njhf->nihf", alpha, h)
        out = out.reshape(n, v, -1) if self.concat else out.mean(dim=2)
        return out + self.bias


class GraphPriorGATConv(nn.Module):
    """`model.gat_prior` (beyond the paper): a GAT layer plus a graph convolution over the fixed
    skeleton, Â·X·W (Kipf & Welling), so attention re-weights a skeleton graph that already
    passes messages instead of learning every weight from nothing. Same shapes as `DenseGATConv`."""

    def __init__(self, attention: DenseGATConv, in_channels: int, out_channels: int):
        super().__init__()
        self.attention = attention
        self.prior = nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        return self.attention(x, mask) + torch.einsum("ij,njc->nic", adjacency, self.prior(x))


class GATShapeBranch(ShapeStack):
    """(B, T, V, C) node features → f_s (B, channels).

    Hidden layers concatenate `heads` heads of channels/heads each (ELU after them, as in GAT);
    the last layer averages `heads` heads of `channels` each (or concatenates, `concat_last`).
    Attention is over each joint's skeleton neighbours and itself.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 512,
        heads: int = 4,
        layers: int = 2,
        concat_last: bool = False,
        dropout: float = 0.0,
        graph: SkeletonGraph = SkeletonGraph(),
        prior: bool = False,
    ):
        if layers < 1:
            raise ValueError(f"the shape GAT needs at least one layer, got {layers}")
        if channels % heads:
            raise ValueError(f"gat_channels ({channels}) must be divisible by gat_heads ({heads})")
        convs, width = [], in_channels
        for index in range(layers):
            concat = concat_last if index == layers - 1 else True
            per_head = channels // heads if concat else channels
            conv = DenseGATConv(width, per_head, heads, concat, attention_dropout=dropout)
            out = per_head * heads if concat else per_head
            convs.append(GraphPriorGATConv(conv, width, out) if prior else conv)
            width = channels
        super().__init__(convs, nn.ELU(inplace=True), channels)
        self.register_buffer("mask", graph.neighbour_mask(), persistent=False)
        self.register_buffer("adjacency", graph.normalised_adjacency(), persistent=False)

    def propagate(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if isinstance(layer, GraphPriorGATConv):
            return layer(x, self.mask, self.adjacency)
        return layer(x, self.mask)

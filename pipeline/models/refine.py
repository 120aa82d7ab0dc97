"""Refinement network R (paper §3.2.1): per-joint fully connected layers 3 → 128 → 512 → 2048
(shared across joints and frames), preceded by an input BatchNorm over the joint coordinates.

Why the input BatchNorm: under the paper's Eq. 1 normalisation (x/h, y/w, z/(h·w)) coordinates are
of order 1e-3 (z even 1e-5), far too small for a randomly initialised MLP. Like ST-GCN's `data_bn`,
one BatchNorm channel per (joint, coordinate) rescales them to unit variance.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.skeleton import NUM_JOINTS


class JointRefinement(nn.Module):
    """(B, T, V, C) joint coordinates → (B, T, V, widths[-1]) node features."""

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] = (128, 512, 2048),
        num_joints: int = NUM_JOINTS,
    ):
        super().__init__()
        if not widths:
            raise ValueError("refine_widths must name at least one layer width")
        self.in_channels = in_channels
        self.num_joints = num_joints
        self.out_channels = widths[-1]
        self.data_bn = nn.BatchNorm1d(num_joints * in_channels)
        layers: list[nn.Module] = []
        for index, (width_in, width_out) in enumerate(
            zip((in_channels, *widths[:-1]), widths, strict=True)
        ):
            if index > 0:
                layers.append(nn.ReLU(inplace=True))  # ReLU between the layers, not after the last
            layers.append(nn.Linear(width_in, width_out))
        self.mlp = nn.Sequential(*layers)

    def normalise_input(self, joints: torch.Tensor) -> torch.Tensor:
        b, t, v, c = joints.shape
        x = joints.reshape(b, t, v * c).transpose(1, 2)  # (B, V·C, T): BN over batch and time
        return self.data_bn(x).transpose(1, 2).reshape(b, t, v, c)

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.normalise_input(joints))

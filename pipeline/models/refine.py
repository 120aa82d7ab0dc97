"""Refinement network R (paper §3.2.1): per-joint fully connected layers 3 → 128 → 512 → 2048
(shared across joints and frames), preceded by a fixed standardisation of the joint coordinates.

Why a fixed standardisation (`input_mean`, `input_std`: buffers saved with the weights) and not
an input BatchNorm (ST-GCN's `data_bn`, which this network had before): the cached coordinates
can be of any scale — paper Eq. 1 on metric world landmarks leaves variances of ~1e-7 (x, y) and
~1e-11 (z), far below BatchNorm's eps (1e-5), which erased them, and its running statistics
(initialised at 0 / 1) lagged far behind such inputs, so eval mode saw other inputs than training
did. Even at unit scale a BatchNorm here subtracts each batch's own mean skeleton — with a P×K
batch of a few identities, part of the very shape that identifies them — while eval mode
subtracts the global one: measured on the tiny test set, that difference alone made the gait
features 5× larger in eval mode than in training. `set_input_statistics` stores the training
joints' per-(joint, coordinate) mean and std once, before training, so every normalisation mode
reaches the network at unit scale, z included, and train and eval modes see the same numbers.
"""

from __future__ import annotations

import numpy as np
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
        self.register_buffer("input_mean", torch.zeros(num_joints, in_channels))
        self.register_buffer("input_std", torch.ones(num_joints, in_channels))
        layers: list[nn.Module] = []
        for index, (width_in, width_out) in enumerate(
            zip((in_channels, *widths[:-1]), widths, strict=True)
        ):
            if index > 0:
                layers.append(nn.ReLU(inplace=True))  # ReLU between the layers, not after the last
            layers.append(nn.Linear(width_in, width_out))
        self.mlp = nn.Sequential(*layers)

    def set_input_statistics(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Fix the standardisation: (V, C) mean and std of the training joints."""
        shape = (self.num_joints, self.in_channels)
        if np.shape(mean) != shape or np.shape(std) != shape:
            raise ValueError(f"input statistics must be {shape}, got {np.shape(mean)}")
        if not (np.all(np.isfinite(std)) and np.all(np.asarray(std) > 0)):
            raise ValueError("input std must be finite and positive")
        self.input_mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(np.asarray(std), dtype=torch.float32))

    def normalise_input(self, joints: torch.Tensor) -> torch.Tensor:
        return (joints - self.input_mean) / self.input_std

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.normalise_input(joints))

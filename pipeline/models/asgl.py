"""The ASGL network (paper §3, SPEC §5): appearance (ResNet) + shape (GAT) + gait (ST-GAT),
fused by the Adaptive Fusion Module; one class whose switches give every ablation row
(Table 3: branches off, Table 4: `graph="gcn"`, Table 5: `pose="2d"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from pipeline.config import GRAPHS, ModelConfig
from pipeline.data.dataset import IMAGENET_MEAN, IMAGENET_STD  # what the frame loader applies
from pipeline.io import load_tensors
from pipeline.models.batchnorm import warm_start
from pipeline.models.fusion import AdaptiveFusion
from pipeline.models.gat import GATShapeBranch
from pipeline.models.gcn import GCNShapeBranch, stgcn_branch
from pipeline.models.refine import JointRefinement
from pipeline.models.resnet import ResNet
from pipeline.models.stgat import stgat_branch
from pipeline.skeleton import NUM_JOINTS

POSE_CHANNELS = {"3d": 3, "2d": 2, "3d+2d": 5}
PAPER_FRAME_SIZE = (256, 128)  # (H, W), SPEC §6; the demo profile trains at 128 × 64


@dataclass(frozen=True)
class InputContract:
    """What the network's inputs must be, carried by the model (as timm's `pretrained_cfg`), so
    export, embed and search read it from the model: frames (B, T, 3, H, W) RGB resized to
    `frame_size` (H, W), scaled to [0, 1], then (x - mean) / std; joints (B, T, 14,
    `pose_channels`) of pose `pose` (the cache fields `cache.POSE_FIELDS[pose]`)."""

    frame_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    pose: str
    pose_channels: int


class ASGLOutput(NamedTuple):
    embedding: torch.Tensor  # (B, fusion_dim): the fused f after the fusion BN, used for retrieval
    logits: torch.Tensor | None  # (B, num_classes), None when num_classes == 0
    branch_weights: torch.Tensor  # (B, n_active_branches), columns in `model.branch_names` order
    projected: torch.Tensor | None = None  # (B, n_active_branches, fusion_dim) before weighting


class AppearanceBranch(nn.Module):
    """(B, T, 3, H, W) frames → f_a (B, C): ResNet per frame, spatial max pool, temporal average, BN."""

    def __init__(self, depth: int = 50, last_stride: int = 1):
        super().__init__()
        self.backbone = ResNet(depth, last_stride, num_classes=0)
        self.out_channels = self.backbone.out_channels
        self.bn = nn.BatchNorm1d(self.out_channels)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t = frames.shape[:2]
        maps = self.backbone.forward_features(frames.flatten(0, 1))
        per_frame = maps.amax(dim=(2, 3)).view(b, t, -1)
        return self.bn(per_frame.mean(dim=1))


class ASGL(nn.Module):
    """Built from a `ModelConfig` (its defaults are the paper's; the profiles and the ablation
    switches are small overrides of it), so the network's settings live in one place."""

    def __init__(
        self,
        config: ModelConfig | None = None,
        num_classes: int = 0,
        frame_size: tuple[int, int] = PAPER_FRAME_SIZE,
    ):
        super().__init__()
        cfg = config if config is not None else ModelConfig()
        if not cfg.has_branch:
            raise ValueError(
                "at least one branch must be active: use_appearance, use_shape and use_gait are all "
                "off — keep one of them on"
            )
        if cfg.graph not in GRAPHS:
            raise ValueError(f"graph must be one of {GRAPHS}, got {cfg.graph!r}")
        if cfg.pose not in POSE_CHANNELS:
            raise ValueError(f"pose must be one of {tuple(POSE_CHANNELS)}, got {cfg.pose!r}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be ≥ 0, got {num_classes}")
        self.use_appearance, self.use_shape, self.use_gait = (
            cfg.use_appearance,
            cfg.use_shape,
            cfg.use_gait,
        )
        self.graph, self.pose = cfg.graph, cfg.pose
        self.pose_channels = POSE_CHANNELS[cfg.pose]
        self.num_classes = num_classes
        self.input_contract = InputContract(
            (int(frame_size[0]), int(frame_size[1])),
            tuple(float(v) for v in IMAGENET_MEAN),
            tuple(float(v) for v in IMAGENET_STD),
            cfg.pose,
            self.pose_channels,
        )

        self.appearance = (
            AppearanceBranch(cfg.backbone_depth, cfg.last_stride) if cfg.use_appearance else None
        )
        self.refine = self.shape = self.gait = None
        if cfg.uses_skeleton:
            # one refinement network feeds both graph branches (paper Fig. 1)
            self.refine = JointRefinement(self.pose_channels, tuple(cfg.refine_widths), NUM_JOINTS)
            self.shape, self.gait = _graph_branches(cfg, self.refine.out_channels)

        fusion_dim = cfg.fusion_dim
        branches = {"appearance": self.appearance, "shape": self.shape, "gait": self.gait}
        self.branch_names = tuple(name for name, module in branches.items() if module is not None)
        self.fusion = AdaptiveFusion(
            tuple(branches[name].out_channels for name in self.branch_names),
            fusion_dim,
            refine=cfg.fusion_refine,
            branch_dropout=cfg.branch_dropout,
        )
        self.embedding_dim = fusion_dim
        self.classifier = (
            nn.Linear(fusion_dim, num_classes, bias=False) if num_classes > 0 else None
        )
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)
        warm_start(self)  # eval-mode statistics right after a few batches (models/batchnorm.py)

    @property
    def needs_frames(self) -> bool:
        return self.use_appearance

    @property
    def needs_joints(self) -> bool:
        return self.refine is not None  # built exactly when the config uses a skeleton

    def _check_inputs(self, frames: torch.Tensor | None, joints: torch.Tensor | None) -> None:
        if self.needs_frames:
            if frames is None:
                raise ValueError(
                    "this model has the appearance branch: frames (B, T, 3, H, W) are required"
                )
            if frames.dim() != 5 or frames.shape[2] != 3:
                raise ValueError(f"frames must be (B, T, 3, H, W), got {tuple(frames.shape)}")
        if self.needs_joints:
            if joints is None:
                raise ValueError(
                    "this model has a skeleton branch: joints (B, T, 14, C) are required"
                )
            expected = (NUM_JOINTS, self.pose_channels)
            if joints.dim() != 4 or tuple(joints.shape[2:]) != expected:
                raise ValueError(
                    f"joints must be (B, T, {NUM_JOINTS}, {self.pose_channels}) for pose "
                    f"{self.pose!r}, got {tuple(joints.shape)}"
                )

    def forward(
        self, frames: torch.Tensor | None = None, joints: torch.Tensor | None = None
    ) -> ASGLOutput:
        self._check_inputs(frames, joints)
        embeddings = []
        if self.appearance is not None:
            embeddings.append(self.appearance(frames))
        if self.refine is not None:
            nodes = self.refine(joints)  # (B, T, V, refine_widths[-1])
            if self.shape is not None:
                embeddings.append(self.shape(nodes))
            if self.gait is not None:
                embeddings.append(self.gait(nodes))
        projected = self.fusion.project(embeddings)
        embedding, weights = self.fusion.combine(projected)
        logits = self.classifier(embedding) if self.classifier is not None else None
        return ASGLOutput(embedding, logits, weights, projected)


def _graph_branches(cfg: ModelConfig, nodes: int) -> tuple[nn.Module | None, nn.Module | None]:
    """The shape and gait branches the switches ask for (GAT / ST-GAT, or GCN / ST-GCN)."""
    shape = gait = None
    if cfg.use_shape:
        shape = (
            GATShapeBranch(
                nodes,
                cfg.gat_channels,
                cfg.gat_heads,
                cfg.gat_layers,
                cfg.gat_concat_last,
                cfg.dropout,
                prior=cfg.gat_prior,
            )
            if cfg.graph == "gat"
            else GCNShapeBranch(nodes, cfg.gat_channels, cfg.gat_layers)
        )
    if cfg.use_gait:
        gait = (stgat_branch if cfg.graph == "gat" else stgcn_branch)(nodes, cfg)
    return shape, gait


def build_model(
    model_cfg: ModelConfig, num_classes: int, frame_size: tuple[int, int] = PAPER_FRAME_SIZE
) -> ASGL:
    """Build ASGL from a `ModelConfig` for frames of `frame_size` (H, W: the run's train.height,
    train.width); loads `backbone_weights` when set and appearance is on."""
    model = ASGL(model_cfg, num_classes, frame_size)
    if model_cfg.backbone_weights and model.appearance is not None:
        load_backbone_weights(model, model_cfg.backbone_weights)
    return model


def load_backbone_weights(model: ASGL, path: str | Path) -> None:
    """Load a torchvision ResNet checkpoint (a plain state_dict file, `fc.*` ignored) into the
    appearance backbone. Raises ValueError naming the first missing, unexpected or mis-shaped key."""
    if model.appearance is None:
        raise ValueError("the model has no appearance branch, so there is no backbone to load into")
    backbone = model.appearance.backbone
    backbone.load_state_dict(_backbone_state(backbone, path), strict=False)


def check_backbone_weights(model_cfg: ModelConfig) -> None:
    """Raise ValueError (as `load_backbone_weights` would) when the configured weights file does
    not fit the configured backbone: a run can refuse it before it creates anything."""
    if model_cfg.backbone_weights and model_cfg.use_appearance:
        backbone = ResNet(model_cfg.backbone_depth, model_cfg.last_stride, num_classes=0)
        _backbone_state(backbone, model_cfg.backbone_weights)


def _backbone_state(backbone: ResNet, path: str | Path) -> dict[str, torch.Tensor]:
    """The checkpoint's backbone tensors, checked key by key against `backbone`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"backbone weights file {path} does not exist")
    try:
        checkpoint = load_tensors(path)
    except ValueError as error:
        raise ValueError(f"{path} cannot be used: {error}") from None
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f"{path}: expected a state_dict (name → tensor), got {type(checkpoint).__name__}"
        )
    expected = backbone.state_dict()
    given = {k: v for k, v in checkpoint.items() if not k.startswith("fc.")}
    depth = f"ResNet-{backbone.depth}"
    for key, tensor in given.items():
        if key not in expected:
            raise ValueError(f"{path}: unexpected key '{key}' for a torchvision {depth} backbone")
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != tuple(
            expected[key].shape
        ):
            shape = (
                tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            )
            raise ValueError(
                f"{path}: key '{key}' has shape {shape}, the {depth} backbone expects "
                f"{tuple(expected[key].shape)}"
            )
    for key in expected:
        # old torchvision checkpoints predate BatchNorm's num_batches_tracked counter
        if key not in given and not key.endswith("num_batches_tracked"):
            raise ValueError(f"{path}: missing key '{key}' for a torchvision {depth} backbone")
    return given


def count_parameters(model: ASGL) -> dict[str, int]:
    """Trainable parameter count per part (absent branches are 0) and the total."""
    parts = ("appearance", "refine", "shape", "gait", "fusion", "classifier")
    counts = {}
    for name in parts:
        module = getattr(model, name)
        counts[name] = (
            sum(p.numel() for p in module.parameters() if p.requires_grad)
            if module is not None
            else 0
        )
    counts["total"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return counts

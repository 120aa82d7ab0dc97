"""The ASGL network and its building blocks, one architecture per module."""

from pipeline.models.asgl import (
    ASGL,
    AppearanceBranch,
    ASGLOutput,
    build_model,
    check_backbone_weights,
    count_parameters,
    load_backbone_weights,
)
from pipeline.models.fusion import AdaptiveFusion
from pipeline.models.gat import DenseGATConv, GATShapeBranch, skeleton_mask
from pipeline.models.gcn import (
    GCNShapeBranch,
    STGCNGaitBranch,
    normalised_adjacency,
    spatial_partition,
)
from pipeline.models.refine import JointRefinement
from pipeline.models.resnet import ResNet
from pipeline.models.stgat import STABlock, STGATGaitBranch, hop_mask

__all__ = [
    "ASGL",
    "ASGLOutput",
    "AdaptiveFusion",
    "AppearanceBranch",
    "DenseGATConv",
    "GATShapeBranch",
    "GCNShapeBranch",
    "JointRefinement",
    "ResNet",
    "STABlock",
    "STGATGaitBranch",
    "STGCNGaitBranch",
    "build_model",
    "check_backbone_weights",
    "count_parameters",
    "hop_mask",
    "load_backbone_weights",
    "normalised_adjacency",
    "skeleton_mask",
    "spatial_partition",
]

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
from pipeline.models.blocks import (
    GaitStack,
    ShapeStack,
    SpatialTemporalUnit,
    TemporalConv,
    gait_stack,
)
from pipeline.models.fusion import AdaptiveFusion
from pipeline.models.gat import DenseGATConv, GATShapeBranch
from pipeline.models.gcn import GCNShapeBranch, STGCNBlock, stgcn_branch
from pipeline.models.graph import SkeletonGraph
from pipeline.models.refine import JointRefinement
from pipeline.models.resnet import ResNet
from pipeline.models.stgat import STABlock, stgat_branch

__all__ = [
    "ASGL",
    "ASGLOutput",
    "AdaptiveFusion",
    "AppearanceBranch",
    "DenseGATConv",
    "GATShapeBranch",
    "GCNShapeBranch",
    "GaitStack",
    "JointRefinement",
    "ResNet",
    "STABlock",
    "STGCNBlock",
    "ShapeStack",
    "SkeletonGraph",
    "SpatialTemporalUnit",
    "TemporalConv",
    "build_model",
    "check_backbone_weights",
    "count_parameters",
    "gait_stack",
    "load_backbone_weights",
    "stgat_branch",
    "stgcn_branch",
]

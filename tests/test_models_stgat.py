"""Gait branches: ST-GAT attention limited to hop distance D; ST-GCN and GCN branches."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import ModelConfig
from pipeline.models import (
    GCNShapeBranch,
    SkeletonGraph,
    STABlock,
    STGCNBlock,
    stgat_branch,
    stgcn_branch,
)
from pipeline.skeleton import NUM_JOINTS

GRAPH = SkeletonGraph()


def block_with_hops(hops: int) -> STABlock:
    torch.manual_seed(0)  # same weights for every D
    return STABlock(6, 8, heads=2, neighbourhood=GRAPH.hop_mask(hops), temporal_kernel=3)


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_attention_is_exactly_zero_beyond_hop_distance(hops):
    x = torch.randn(2, 6, 4, NUM_JOINTS)
    attention = block_with_hops(hops).attention(x)
    assert attention.shape == (2, 2, 4, NUM_JOINTS, NUM_JOINTS)
    far = torch.from_numpy(GRAPH.hop_distances() > hops)
    assert far.any()
    assert torch.all(attention[..., far] == 0)
    assert torch.all(attention[..., ~far] > 0)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 2, 4, NUM_JOINTS))


def test_changing_hop_distance_changes_attention_and_output():
    x = torch.randn(2, 6, 4, NUM_JOINTS)
    near, far = block_with_hops(2).eval(), block_with_hops(3).eval()
    a_near, a_far = near.attention(x), far.attention(x)
    newly_reachable = torch.from_numpy(GRAPH.hop_distances() == 3)
    assert torch.all(a_near[..., newly_reachable] == 0)
    assert torch.all(a_far[..., newly_reachable] > 0)
    assert not torch.allclose(near(x), far(x))


def test_root_transform_adds_each_joints_own_features_and_nothing_else():
    """`stgat_root`: with its weights zero the block is the paper's; otherwise a change in one
    joint reaches that joint through the root path even where attention gives it little weight."""
    torch.manual_seed(0)
    plain = STABlock(6, 8, heads=2, neighbourhood=GRAPH.hop_mask(1), temporal_kernel=1).eval()
    torch.manual_seed(0)
    rooted = STABlock(6, 8, heads=2, neighbourhood=GRAPH.hop_mask(1), temporal_kernel=1, root=True)
    rooted.eval()
    assert plain.root is None and rooted.root.weight.shape == (8, 6, 1, 1)
    x = torch.randn(2, 6, 3, NUM_JOINTS)
    with torch.no_grad():
        rooted.root.weight.zero_()
        rooted.root.bias.zero_()
        torch.testing.assert_close(rooted(x), plain(x))
        rooted.root.weight.normal_()
        assert not torch.allclose(rooted(x), plain(x))


def test_gait_branch_shapes_and_temporal_kernel_check():
    cfg = ModelConfig(stgat_channels=(4, 8), stgat_heads=2, hop_distance=3, temporal_kernel=3)
    branch = stgat_branch(6, cfg)
    assert [block.out_channels for block in branch.blocks] == [4, 8]
    assert branch(torch.randn(2, 5, NUM_JOINTS, 6)).shape == (2, 8)
    with pytest.raises(ValueError, match="odd"):
        stgat_branch(6, ModelConfig(stgat_channels=(4,), temporal_kernel=4))
    with pytest.raises(ValueError, match="hop_distance"):
        stgat_branch(6, ModelConfig(stgat_channels=(4,), hop_distance=0))
    with pytest.raises(ValueError, match="at least one block"):
        stgcn_branch(6, ModelConfig(stgat_channels=()))


def test_temporal_convolution_connects_neighbouring_frames():
    """A change in one frame reaches the frames within the temporal kernel, not beyond."""
    torch.manual_seed(0)
    block = STABlock(6, 6, heads=2, neighbourhood=GRAPH.hop_mask(3), temporal_kernel=3).eval()
    x = torch.randn(1, 6, 9, NUM_JOINTS)
    changed = x.clone()
    changed[:, :, 4] += 1.0
    diff = (block(changed) - block(x)).abs().sum(dim=(0, 1, 3))
    assert torch.all(diff[3:6] > 0)
    assert torch.all(diff[:3] == 0) and torch.all(diff[6:] == 0)


def test_gcn_branches_shapes():
    nodes = torch.randn(2, 5, NUM_JOINTS, 6)
    assert GCNShapeBranch(6, channels=8, layers=2)(nodes).shape == (2, 8)
    gait = stgcn_branch(6, ModelConfig(stgat_channels=(4, 8), temporal_kernel=3))
    assert gait(nodes).shape == (2, 8)


def test_the_skeleton_prior_is_st_gcn_s_partitioned_convolution_beside_the_attention():
    torch.manual_seed(0)
    partition = GRAPH.spatial_partition()
    plain = STABlock(6, 8, heads=2, neighbourhood=GRAPH.hop_mask(3), temporal_kernel=3)
    torch.manual_seed(0)
    with_prior = STABlock(
        6, 8, heads=2, neighbourhood=GRAPH.hop_mask(3), temporal_kernel=3, prior=partition
    )
    # the attention's own weights are drawn as before: the prior is added, nothing re-drawn
    for name, tensor in plain.state_dict().items():
        torch.testing.assert_close(with_prior.state_dict()[name], tensor)
    x = torch.randn(2, 6, 4, NUM_JOINTS)
    added = with_prior.aggregate(x) - plain.aggregate(x)
    torch.manual_seed(1)
    reference = STGCNBlock(6, 8, partition, temporal_kernel=3)
    reference.graph_conv.load_state_dict(with_prior.prior.graph_conv.state_dict())
    with torch.no_grad():
        reference.edge_importance.copy_(with_prior.prior.edge_importance)
    torch.testing.assert_close(added, reference.aggregate(x), atol=1e-5, rtol=1e-5)
    # it is the fixed skeleton's: a joint only hears its 1-hop neighbours through it
    hand = 6  # l_hand's neighbours: itself and the l_elbow
    poke = torch.zeros_like(x)
    poke[..., 0] = 1.0  # only the head moves
    reach = with_prior.prior(poke) - with_prior.prior(torch.zeros_like(x))
    assert torch.all(reach[..., hand] == 0) and reach[..., 1].abs().sum() > 0


def test_the_attention_gate_starts_the_block_as_its_prior_and_learns_to_open():
    partition = GRAPH.spatial_partition()
    torch.manual_seed(0)
    gated = STABlock(
        6,
        8,
        heads=2,
        neighbourhood=GRAPH.hop_mask(3),
        temporal_kernel=3,
        prior=partition,
        attention_gate=True,
    )
    x = torch.randn(2, 6, 4, NUM_JOINTS)
    # at the start the spatial layer is the prior alone: the attention term is scaled by 0
    torch.testing.assert_close(gated.aggregate(x), gated.prior(x))
    # yet the gate gets a gradient, so training can open it
    gated.aggregate(x).pow(2).sum().backward()
    assert gated.attention_gate.grad is not None and gated.attention_gate.grad.abs().item() > 0
    # opened to 1, it is the ungated block
    torch.manual_seed(0)
    ungated = STABlock(
        6, 8, heads=2, neighbourhood=GRAPH.hop_mask(3), temporal_kernel=3, prior=partition
    )
    with torch.no_grad():
        gated.attention_gate.fill_(1.0)
    torch.testing.assert_close(gated.aggregate(x), ungated.aggregate(x))


def test_the_gait_branch_builds_the_gate_only_when_asked():
    plain = stgat_branch(
        6, ModelConfig(stgat_channels=(4, 8), temporal_kernel=3, stgat_attention_gate=False)
    )
    gated = stgat_branch(6, ModelConfig(stgat_channels=(4, 8), temporal_kernel=3))
    assert all(block.attention_gate is None for block in plain.blocks)
    assert all(block.attention_gate is not None for block in gated.blocks)
    paper = stgat_branch(
        6, ModelConfig(stgat_channels=(4, 8), temporal_kernel=3, stgat_prior=False)
    )
    assert all(block.attention_gate is None and block.prior is None for block in paper.blocks)

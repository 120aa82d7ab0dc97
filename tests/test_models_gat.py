"""Dense masked GAT layer: agrees with PyG's GATConv and respects the skeleton neighbourhoods."""

from __future__ import annotations

import pytest
import torch

from pipeline.models import DenseGATConv, GATShapeBranch, SkeletonGraph
from pipeline.skeleton import EDGES, NUM_JOINTS


def batched_edge_index(graphs: int) -> torch.Tensor:
    """Both directions of every bone, for `graphs` disjoint copies of the skeleton."""
    bones = torch.tensor(EDGES).t()
    one = torch.cat([bones, bones.flip(0)], dim=1)
    return torch.cat([one + g * NUM_JOINTS for g in range(graphs)], dim=1)


@pytest.mark.parametrize(("heads", "concat"), [(3, True), (3, False), (1, True)])
def test_dense_layer_equals_torch_geometric_gatconv(heads, concat):
    pyg = pytest.importorskip(
        "torch_geometric.nn", reason="torch_geometric not installed (test extra)"
    )
    torch.manual_seed(0)
    reference = pyg.GATConv(16, 8, heads=heads, concat=concat).eval()
    with torch.no_grad():
        reference.bias.normal_()  # PyG zero-initialises it; make it count
    dense = DenseGATConv(16, 8, heads=heads, concat=concat).eval()
    dense.load_state_dict(reference.state_dict())  # same parameter names and shapes
    graphs = 5
    x = torch.randn(graphs, NUM_JOINTS, 16)
    expected = reference(x.reshape(-1, 16), batched_edge_index(graphs))
    out = dense(x, SkeletonGraph().neighbour_mask())
    assert out.shape == (graphs, NUM_JOINTS, heads * 8 if concat else 8)
    torch.testing.assert_close(out.reshape(-1, out.shape[-1]), expected, atol=1e-5, rtol=1e-5)


def test_attention_is_a_softmax_over_skeleton_neighbours_only():
    torch.manual_seed(0)
    layer = DenseGATConv(6, 4, heads=2)
    mask = SkeletonGraph().neighbour_mask()
    h = layer.lin(torch.randn(3, NUM_JOINTS, 6)).view(3, NUM_JOINTS, 2, 4)
    alpha = layer.attention(h, mask)
    assert alpha.shape == (3, 2, NUM_JOINTS, NUM_JOINTS)
    assert torch.all(alpha[..., ~mask] == 0)
    assert torch.all(alpha[..., mask] > 0)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3, 2, NUM_JOINTS))
    # the neck (1) attends to itself, the head and both shoulders, nothing else
    assert mask[1].nonzero().flatten().tolist() == [0, 1, 2, 3]


def test_shape_branch_pools_joints_then_frames():
    torch.manual_seed(0)
    branch = GATShapeBranch(in_channels=6, channels=8, heads=2, layers=2).eval()
    nodes = torch.randn(2, 5, NUM_JOINTS, 6)
    out = branch(nodes)
    assert out.shape == (2, 8)
    # frame order does not matter (temporal average); each frame is pooled on its own
    torch.testing.assert_close(branch(nodes.flip(1)), out)
    per_frame = torch.stack([branch(nodes[:, t : t + 1]) for t in range(5)], 1)
    torch.testing.assert_close(per_frame.mean(1), out)


def test_shape_branch_concat_last_and_width_checks():
    branch = GATShapeBranch(in_channels=6, channels=8, heads=2, layers=1, concat_last=True)
    assert branch.layers[0].concat and branch.layers[0].out_channels == 4
    assert branch(torch.randn(1, 2, NUM_JOINTS, 6)).shape == (1, 8)
    with pytest.raises(ValueError, match="divisible"):
        GATShapeBranch(in_channels=6, channels=9, heads=2)


def test_the_graph_prior_adds_a_skeleton_convolution_to_each_attention_layer():
    torch.manual_seed(0)
    plain = GATShapeBranch(6, channels=8, heads=2, layers=2)
    torch.manual_seed(0)
    prior = GATShapeBranch(6, channels=8, heads=2, layers=2, prior=True)
    x = torch.randn(3, 14, 6)
    for a, b in zip(plain.layers, prior.layers, strict=True):
        b.attention.load_state_dict(a.state_dict())
        with torch.no_grad():
            b.prior.weight.zero_()
            b.prior.bias.zero_()
        torch.testing.assert_close(prior.propagate(b, x), plain.propagate(a, x))
        with torch.no_grad():
            b.prior.weight.normal_()
        added = prior.propagate(b, x) - plain.propagate(a, x)
        expected = torch.einsum("ij,njc->nic", prior.adjacency, b.prior(x))
        torch.testing.assert_close(added, expected)
        x = torch.randn(3, 14, 8)

"""The skeleton graph: adjacency, hop distances, the GAT and ST-GAT masks, GCN's normalised
adjacency and ST-GCN's spatial partition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models import SkeletonGraph
from pipeline.skeleton import EDGES, NUM_JOINTS

GRAPH = SkeletonGraph()


def test_hop_distances_and_adjacency():
    hops = GRAPH.hop_distances()
    assert hops[0, 1] == 1 and hops[6, 7] == 6 and np.isfinite(hops).all()
    # from the head: neck 1, shoulders 2, elbows and hips 3, hands and knees 4, feet 5
    assert hops[0].tolist() == [0, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4, 5, 5]
    assert (np.diag(hops) == 0).all() and (hops == hops.T).all()
    adj = GRAPH.adjacency()
    assert adj.dtype == np.float32
    assert adj.sum() == 14 + 2 * len(EDGES)
    assert GRAPH.adjacency(self_loops=False).sum() == 2 * len(EDGES)


def test_a_disconnected_joint_is_unreachable():
    hops = SkeletonGraph(num_joints=3, edges=((0, 1),), center=0).hop_distances()
    assert hops[0, 1] == 1 and np.isinf(hops[0, 2]) and hops[2, 2] == 0


def test_masks_are_the_neighbourhoods_they_name():
    mask = GRAPH.neighbour_mask()
    assert mask.dtype == torch.bool
    assert mask[1].nonzero().flatten().tolist() == [0, 1, 2, 3]  # neck: head, itself, shoulders
    assert torch.equal(GRAPH.hop_mask(1), mask)
    three = GRAPH.hop_mask(3)
    assert three[0].nonzero().flatten().tolist() == [0, 1, 2, 3, 4, 5, 8, 9]
    with pytest.raises(ValueError, match="hop_distance"):
        GRAPH.hop_mask(0)


def test_spatial_partition_matches_st_gcn():
    partition = GRAPH.spatial_partition()
    assert GRAPH.center == 1  # the neck, ST-GCN's gravity centre
    assert partition.shape == (3, NUM_JOINTS, NUM_JOINTS)
    # subsets are disjoint and together the column-normalised 1-hop neighbourhood
    assert torch.all((partition > 0).sum(0) <= 1)
    torch.testing.assert_close(partition.sum(0).sum(0), torch.ones(NUM_JOINTS))
    assert torch.equal(partition[0], torch.diag(torch.diagonal(partition[0])))
    neck, l_shoulder, l_elbow, head = 1, 2, 4, 0
    assert partition[2, neck, l_shoulder] > 0  # message from nearer the centre
    assert partition[1, l_elbow, l_shoulder] > 0  # message from farther away
    assert partition[2, neck, head] > 0
    assert partition[1, head, neck] > 0
    torch.testing.assert_close(
        partition[2, neck, l_shoulder], torch.tensor(1 / 4)
    )  # degree 3 + self


def test_normalised_adjacency_is_symmetric_with_unit_spectral_radius():
    adj = GRAPH.normalised_adjacency()
    torch.testing.assert_close(adj, adj.t())
    eigenvalues = torch.linalg.eigvalsh(adj.double())
    assert eigenvalues.max().item() == pytest.approx(1.0, abs=1e-6)
    assert adj[0, 12] == 0  # head and l_foot are not neighbours

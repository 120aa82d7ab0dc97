"""The skeleton graph as one object (as mmaction2's `Graph`): the joint layout and everything the
graph layers derive from it — adjacency, hop distances, the attention masks of GAT (1 hop) and
ST-GAT (Eq. 6, D hops), GCN's normalised adjacency and ST-GCN's spatial partition.

The layout itself (joint order, bones) is the cache format's and lives in `pipeline.skeleton`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.skeleton import EDGES, JOINT_NAMES, NUM_JOINTS

# ST-GCN's gravity centre for OpenPose-style skeletons is the neck
NECK = JOINT_NAMES.index("neck")


@dataclass(frozen=True)
class SkeletonGraph:
    """Joints 0 … num_joints-1 joined by undirected `edges` (bones); `center` is the joint the
    spatial partition measures "nearer" and "farther" from."""

    num_joints: int = NUM_JOINTS
    edges: tuple[tuple[int, int], ...] = EDGES
    center: int = NECK

    def adjacency(self, self_loops: bool = True) -> np.ndarray:
        """(V, V) float32 0/1 adjacency."""
        adj = np.zeros((self.num_joints, self.num_joints), dtype=np.float32)
        for i, j in self.edges:
            adj[i, j] = adj[j, i] = 1.0
        if self_loops:
            np.fill_diagonal(adj, 1.0)
        return adj

    def hop_distances(self) -> np.ndarray:
        """(V, V) shortest-path hop counts (inf where unreachable)."""
        dist = np.full((self.num_joints, self.num_joints), np.inf)
        np.fill_diagonal(dist, 0)
        for i, j in self.edges:
            dist[i, j] = dist[j, i] = 1
        for k in range(self.num_joints):  # Floyd–Warshall; 14 nodes
            dist = np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
        return dist

    def neighbour_mask(self) -> torch.Tensor:
        """(V, V) bool: True where joint j is a neighbour of joint i (bones + self-loops)."""
        return torch.from_numpy(self.adjacency(self_loops=True) > 0)

    def hop_mask(self, max_hops: int) -> torch.Tensor:
        """(V, V) bool: True where the shortest path between i and j is ≤ max_hops (Eq. 6)."""
        if max_hops < 1:
            raise ValueError(f"hop_distance must be ≥ 1, got {max_hops}")
        return torch.from_numpy(self.hop_distances() <= max_hops)

    def normalised_adjacency(self) -> torch.Tensor:
        """Kipf & Welling's D^-1/2 (A + I) D^-1/2, (V, V) float32."""
        adj = self.adjacency(self_loops=True)
        inv_sqrt_degree = 1.0 / np.sqrt(adj.sum(axis=1))
        return torch.from_numpy(
            (adj * inv_sqrt_degree[:, None] * inv_sqrt_degree[None, :]).astype(np.float32)
        )

    def spatial_partition(self) -> torch.Tensor:
        """ST-GCN's 'spatial' partition, (3, V, V), exactly as its `Graph(strategy='spatial')`
        code builds it. The 1-hop neighbourhood with self-loops is column-normalised by degree
        (A·D^-1), then split into: the root itself; the neighbours j at the same or a greater hop
        distance from the centre than the root i; the neighbours nearer the centre. Entry
        [k, j, i] weights the message j → i (ST-GCN's einsum 'nkctv,kvw->nctw')."""
        hops = self.hop_distances()
        adj = (hops <= 1).astype(np.float32)
        normalised = adj / adj.sum(axis=0, keepdims=True)  # ST-GCN's normalize_digraph
        to_center = hops[:, self.center]
        subsets = np.zeros((3, self.num_joints, self.num_joints), dtype=np.float32)
        for i in range(self.num_joints):
            for j in range(self.num_joints):
                if j == i:
                    subsets[0, j, i] = normalised[j, i]
                elif hops[j, i] == 1:
                    subset = 1 if to_center[j] >= to_center[i] else 2
                    subsets[subset, j, i] = normalised[j, i]
        return torch.from_numpy(subsets)

"""Rank lists for the report's grid: a few cloth-changing queries and their top-k gallery
tracklets, ranked by cosine similarity after the CC removal rule of SPEC §7 (same pid and same
camera, or same pid and same clothes, are removed; other pids never are)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pipeline.reporting.plots import RankedQuery


def _unit(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def cc_rank_lists(
    features: Mapping[str, np.ndarray], num_queries: int = 4, top_k: int = 10
) -> list[RankedQuery]:
    """`features` holds features.npz's arrays. Queries with at least one CC-correct gallery entry
    are picked evenly through the query list, so the choice is deterministic."""
    q_pids, g_pids = features["query_pids"].astype(str), features["gallery_pids"].astype(str)
    q_cams, g_cams = features["query_cameras"], features["gallery_cameras"]
    q_clothes, g_clothes = (
        features["query_clothes"].astype(str),
        features["gallery_clothes"].astype(str),
    )
    q_keys, g_keys = features["query_keys"].astype(str), features["gallery_keys"].astype(str)
    same_pid = q_pids[:, None] == g_pids[None, :]
    removed = same_pid & (
        (q_cams[:, None] == g_cams[None, :]) | (q_clothes[:, None] == g_clothes[None, :])
    )
    correct = same_pid & ~removed
    eligible = np.flatnonzero(correct.any(axis=1))
    if eligible.size == 0:
        return []
    picks = eligible[np.unique(np.linspace(0, eligible.size - 1, num_queries).round().astype(int))]
    similarity = _unit(features["query_features"][picks]) @ _unit(features["gallery_features"]).T
    ranked = []
    for row, q in enumerate(picks):
        kept = np.flatnonzero(~removed[q])
        order = kept[np.argsort(-similarity[row, kept], kind="stable")][:top_k]
        ranked.append(
            RankedQuery(
                query_key=str(q_keys[q]),
                query_pid=str(q_pids[q]),
                gallery_keys=tuple(str(k) for k in g_keys[order]),
                gallery_pids=tuple(str(p) for p in g_pids[order]),
                correct=tuple(bool(c) for c in correct[q, order]),
            )
        )
    return ranked

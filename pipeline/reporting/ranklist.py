"""Rank lists as pictures. For the report's grid: a few cloth-changing queries and their top-k
gallery tracklets, ranked by cosine distance after the CC removal rule of SPEC §7
(`pipeline.metrics.setting_masks`, the evaluator's own rule). For `search`: the query and its
matches as a strip."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.layouts import Tracklet
from pipeline.metrics import cosine_distances, setting_masks
from pipeline.reporting.frames import middle_frame
from pipeline.reporting.plots import RankedQuery, StripTile, rank_strip

if TYPE_CHECKING:  # the search module brings the model and MediaPipe; the report needs neither
    from pipeline.search import Match

QUERY_COLOUR, MATCH_COLOUR = (200, 90, 0), (90, 90, 90)  # BGR: blue, grey (identity unknown)


def _cc_masks(features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(correct, removed) CC masks between every query and gallery tracklet."""

    def same(field: str) -> np.ndarray:
        query, gallery = features[f"query_{field}"], features[f"gallery_{field}"]
        if query.dtype.kind in "OSU":
            query, gallery = query.astype(str), gallery.astype(str)
        return query[:, None] == gallery[None, :]

    return setting_masks("cc", same("pids"), same("cameras"), same("clothes"))


def cc_rank_lists(
    features: Mapping[str, np.ndarray], num_queries: int = 4, top_k: int = 10
) -> list[RankedQuery]:
    """`features` holds features.npz's arrays. Queries with at least one CC-correct gallery entry
    are picked evenly through the query list, so the choice is deterministic."""
    correct, removed = _cc_masks(features)
    q_pids, g_pids = features["query_pids"].astype(str), features["gallery_pids"].astype(str)
    q_keys, g_keys = features["query_keys"].astype(str), features["gallery_keys"].astype(str)
    eligible = np.flatnonzero(correct.any(axis=1))
    if eligible.size == 0:
        return []
    picks = eligible[np.unique(np.linspace(0, eligible.size - 1, num_queries).round().astype(int))]
    distances = cosine_distances(features["query_features"][picks], features["gallery_features"])
    ranked = []
    for row, q in enumerate(picks):
        kept = np.flatnonzero(~removed[q])
        order = kept[np.argsort(distances[row, kept], kind="stable")][:top_k]
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


def search_strip(query: Tracklet, matches: list[Match], path: str | Path) -> Path:
    """Query thumbnail (blue) then the top-k (grey) with rank, distance and pid, left to right."""
    tiles = [StripTile(middle_frame(query.source), ("query", query.key[:14]), QUERY_COLOUR)]
    for m in matches:
        lines = (f"#{m.rank} d={m.distance:.3f}", f"pid {m.pid or '?'}"[:16])
        tiles.append(StripTile(middle_frame(m.path), lines, MATCH_COLOUR))
    return rank_strip(tiles, path)

"""Per-query scores of measured runs, recomputed from their features.npz, and paired bootstrap
comparisons between two runs on the same test set (SPEC §7: an ordering is judged from the
difference over the same queries, never from two point values)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.confidence import Difference, paired_differences
from pipeline.metrics import Labels, SettingResult, evaluate
from pipeline.reporting.runs import MeasuredRun

COMPARED_RANKS = (1,)  # R-1 and mAP: the paper's headline metrics


@dataclass(frozen=True)
class RunScores:
    """One run's per-query results, in its features.npz order (the evaluator's order)."""

    results: dict[str, SettingResult]
    query_keys: np.ndarray
    gallery_keys: np.ndarray
    query_pids: np.ndarray


def _labels(features: dict, prefix: str) -> Labels:
    return Labels(
        features[f"{prefix}_pids"].astype(str),
        features[f"{prefix}_cameras"],
        features[f"{prefix}_clothes"].astype(str),
    )


def run_scores(
    run: MeasuredRun, settings: tuple[str, ...] = ("cc", "standard")
) -> RunScores | None:
    """The run's per-query results from features.npz (None when it is missing or unusable)."""
    features = run.load_features()
    if features is None:
        return None
    try:
        query, gallery = _labels(features, "query"), _labels(features, "gallery")
        results = evaluate(
            features["query_features"],
            features["gallery_features"],
            query,
            gallery,
            settings=settings,
        )
        keys = features["query_keys"].astype(str), features["gallery_keys"].astype(str)
    except (KeyError, ValueError):
        return None
    return RunScores(results, *keys, query.pids)


def compare_runs(
    better: MeasuredRun, worse: MeasuredRun, setting: str = "cc"
) -> tuple[dict[str, Difference] | None, str]:
    """Paired bootstrap of `better` − `worse` on R-1 and mAP in `setting`, or (None, why not)."""
    scores = []
    for run in (better, worse):
        found = run_scores(run, (setting,))
        if found is None:
            return None, f"run `{run.name}` has no usable features.npz to pair queries with"
        scores.append(found)
    return compare_scores(*scores, setting, (better.name, worse.name))


def compare_scores(
    a: RunScores, b: RunScores, setting: str, names: tuple[str, str]
) -> tuple[dict[str, Difference] | None, str]:
    """Paired bootstrap of run A − run B (named `names`) from their per-query scores."""
    same_test_set = np.array_equal(a.query_keys, b.query_keys) and np.array_equal(
        a.gallery_keys, b.gallery_keys
    )
    if not same_test_set:
        return None, f"runs `{names[0]}` and `{names[1]}` were not scored on one test set"
    per_query_a, per_query_b = a.results[setting].per_query, b.results[setting].per_query
    diffs = paired_differences(per_query_a, per_query_b, a.query_pids, COMPARED_RANKS)
    if not diffs:
        return None, f"no query has a {setting.upper()} match on this test set"
    return diffs, ""

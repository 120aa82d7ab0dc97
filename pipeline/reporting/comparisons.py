"""Per-query scores of measured runs, recomputed from their features.npz, and paired bootstrap
comparisons between two runs on the same test set (SPEC §7: an ordering is judged from the
difference over the same queries, never from two point values). A probe's record (`asgl-pipeline
probe`, one cue) gives the same per-query scores, so a learned run can be paired with it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.confidence import Difference, paired_differences
from pipeline.metrics import Labels, QueryScores, SettingResult, evaluate, result_from_scores
from pipeline.probe import scores_from_record
from pipeline.reporting.measured import MeasuredRun

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


def probe_scores(record: dict, cue: str) -> RunScores:
    """One cue of a probe record as per-query scores (the probe's query order); ValueError when
    the record lacks them (written before probes kept them) or has no such cue."""
    if "per_query" not in record:
        raise ValueError("the probe record has no per-query scores (re-run the probe)")
    if cue not in record["per_query"]:
        raise ValueError(f"the probe has no cue {cue!r} (it has: {', '.join(record['per_query'])})")
    results = {
        setting: result_from_scores(scores_from_record(scores))
        for setting, scores in record["per_query"][cue].items()
    }
    keys = (np.array(record["query_keys"], dtype=str), np.array(record["gallery_keys"], dtype=str))
    return RunScores(results, *keys, np.array(record["query_pids"], dtype=str))


def aligned(scores: RunScores, reference: RunScores) -> RunScores:
    """`scores` with its queries in `reference`'s order when both hold the same query and gallery
    tracklets (a probe lists them in cache order, a run in split order); else unchanged, which
    `compare_scores` then refuses as another test set."""
    same_sets = sorted(scores.query_keys) == sorted(reference.query_keys) and sorted(
        scores.gallery_keys
    ) == sorted(reference.gallery_keys)
    if not same_sets or len(set(scores.query_keys)) != len(scores.query_keys):
        return scores
    position = {key: i for i, key in enumerate(scores.query_keys)}
    order = np.array([position[key] for key in reference.query_keys], dtype=np.int64)
    results = {
        setting: result_from_scores(
            QueryScores(result.per_query.first[order], result.per_query.ap[order])
        )
        for setting, result in scores.results.items()
    }
    return RunScores(
        results, reference.query_keys, reference.gallery_keys, scores.query_pids[order]
    )


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

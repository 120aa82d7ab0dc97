import numpy as np
import pytest

from pipeline import confidence
from pipeline.confidence import (
    bootstrap_intervals,
    chance_levels,
    format_cell,
    paired_differences,
    summary_with_intervals,
)
from pipeline.metrics import Labels, QueryScores, evaluate, evaluate_reference, setting_masks


def random_scores(rng, queries=40, identities=12, skipped=5, max_first=6):
    first = rng.integers(0, max_first, size=queries)
    first[rng.choice(queries, size=skipped, replace=False)] = -1
    ap = np.where(first >= 0, rng.random(queries), np.nan)
    pids = rng.integers(0, identities, size=queries).astype(str)
    return QueryScores(first, ap), pids


def loop_resamples(scores, pids, metric, resamples, seed):
    """Plain-loop bootstrap: draw identities, pool their queries, average — one resample at a time."""
    valid = scores.first >= 0
    groups = np.unique(pids[valid])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(groups), size=(resamples, len(groups)))
    values = []
    for row in draws:
        pooled = []
        for g in row:
            for q in np.flatnonzero(valid & (pids == groups[g])):
                if metric == "mAP":
                    pooled.append(100.0 * scores.ap[q])
                else:
                    pooled.append(100.0 * float(scores.first[q] < int(metric[2:])))
        values.append(sum(pooled) / len(pooled))
    return np.array(values)


def test_bootstrap_intervals_equal_a_plain_loop():
    scores, pids = random_scores(np.random.default_rng(1))
    got = bootstrap_intervals(scores, pids, ranks=(1, 5), resamples=300, seed=7)
    for metric in ("R-1", "R-5", "mAP"):
        expected = np.percentile(loop_resamples(scores, pids, metric, 300, 7), [2.5, 97.5])
        np.testing.assert_allclose(got[metric], expected, rtol=0, atol=1e-9)


def test_bootstrap_does_not_depend_on_the_block_size(monkeypatch):
    scores, pids = random_scores(np.random.default_rng(2), queries=60, identities=20)
    whole = bootstrap_intervals(scores, pids, resamples=500, seed=3)
    monkeypatch.setattr(confidence, "MAX_BLOCK_CELLS", 20 * 7)  # blocks of 7 resamples
    assert bootstrap_intervals(scores, pids, resamples=500, seed=3) == whole


def test_interval_brackets_the_point_and_narrows_with_more_identities():
    rng = np.random.default_rng(4)
    widths = []
    for identities in (10, 160):
        queries = 4 * identities
        hits = rng.random(queries) < 0.5
        scores = QueryScores(np.where(hits, 0, 3), np.where(hits, 1.0, 0.25))
        pids = np.repeat(np.arange(identities), 4)
        low, high = bootstrap_intervals(scores, pids, ranks=(1,), resamples=1000)["R-1"]
        point = 100.0 * hits.mean()
        assert low <= point <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # ~1/sqrt(16) of the width with 16× the identities


def test_paired_differences_equal_a_plain_loop():
    rng = np.random.default_rng(5)
    a, pids = random_scores(rng)
    b = QueryScores(
        np.where(a.first >= 0, rng.integers(0, 6, size=len(a.first)), -1),
        np.where(a.first >= 0, rng.random(len(a.first)), np.nan),
    )
    got = paired_differences(a, b, pids, ranks=(1,), resamples=200, seed=9)
    for metric in ("R-1", "mAP"):
        loop = loop_resamples(a, pids, metric, 200, 9) - loop_resamples(b, pids, metric, 200, 9)
        np.testing.assert_allclose(
            (got[metric].low, got[metric].high), np.percentile(loop, [2.5, 97.5]), atol=1e-9
        )
        point = 100.0 * (a.values(metric).mean() - b.values(metric).mean())
        assert got[metric].difference == pytest.approx(point)


def constructed_pair(rng, identities, flips):
    """Run B = run A with `flips` queries turned from a hit into a miss (4 queries per identity)."""
    queries = 4 * identities
    first_a = np.where(rng.random(queries) < 0.6, 0, 5)
    first_b = first_a.copy()
    hit = np.flatnonzero(first_a == 0)
    first_b[rng.choice(hit, size=flips, replace=False)] = 5
    pids = np.repeat(np.arange(identities), 4)
    ap = lambda first: np.where(first == 0, 1.0, 1 / 6)  # noqa: E731
    return QueryScores(first_a, ap(first_a)), QueryScores(first_b, ap(first_b)), pids


def test_verdict_holds_for_a_clear_difference_and_reversed_when_swapped():
    a, b, pids = constructed_pair(np.random.default_rng(6), identities=75, flips=60)  # 20 points
    forward = paired_differences(a, b, pids)["R-1"]
    assert forward.difference == pytest.approx(20.0) and forward.verdict == "holds"
    assert paired_differences(b, a, pids)["R-1"].verdict == "reversed"


def test_verdict_is_within_noise_for_a_one_query_difference():
    a, b, pids = constructed_pair(np.random.default_rng(7), identities=75, flips=1)
    diff = paired_differences(a, b, pids)["R-1"]
    assert diff.difference == pytest.approx(100 / 300) and diff.verdict == "within noise"
    assert diff.low <= 0 <= diff.high


def test_paired_differences_refuse_runs_on_different_queries():
    scores, pids = random_scores(np.random.default_rng(8))
    other = QueryScores(np.where(scores.first >= 0, -1, 0), scores.ap)
    with pytest.raises(ValueError, match="different queries"):
        paired_differences(scores, other, pids)


def labelled_set(rng, identities=15, per_id=6):
    pids = np.repeat(np.arange(identities), per_id)
    cameras = rng.integers(0, 3, size=len(pids))
    clothes = np.array([f"{p}/{c}" for p, c in zip(pids, rng.integers(0, 2, size=len(pids)))])
    return Labels(pids, cameras, clothes)


def test_chance_levels_are_the_evaluator_on_random_rankings():
    rng = np.random.default_rng(10)
    query, gallery = labelled_set(rng, per_id=2), labelled_set(rng)
    got = chance_levels(query, gallery, ranks=(1, 5), repeats=5, seed=11, chunk_size=10_000)
    stream = np.random.default_rng(11)
    totals = {s: np.zeros(3) for s in ("standard", "cc", "sc")}
    for _ in range(5):  # plain loop: one random distance matrix per repeat, the reference scorer
        results = evaluate_reference(
            stream.random((len(query), len(gallery)), dtype=np.float32), query, gallery, max_rank=5
        )
        for setting, result in results.items():
            summary = result.summary((1, 5))
            totals[setting] += [summary["R-1"], summary["R-5"], summary["mAP"]]
    for setting, total in totals.items():
        np.testing.assert_allclose(
            [got[setting][m] for m in ("R-1", "R-5", "mAP")], total / 5, atol=1e-9
        )


def test_chance_rank1_matches_the_expected_share_of_correct_entries():
    """Independent of the simulation: under a random ranking, P(first entry correct) is the share
    of correct entries among those left after removal, averaged over scored queries."""
    rng = np.random.default_rng(12)
    query, gallery = labelled_set(rng, per_id=2), labelled_set(rng)
    got = chance_levels(query, gallery, settings=("cc",), ranks=(1,), repeats=400, seed=0)
    shares = []
    for i in range(len(query)):
        correct, removed = setting_masks(
            "cc",
            gallery.pids == query.pids[i],
            gallery.cameras == query.cameras[i],
            gallery.clothes == query.clothes[i],
        )
        if correct.any():
            shares.append(correct.sum() / (~removed).sum())
    assert got["cc"]["R-1"] == pytest.approx(100 * np.mean(shares), abs=1.0)


def test_summary_with_intervals_and_cells():
    rng = np.random.default_rng(13)
    query, gallery = labelled_set(rng, per_id=2), labelled_set(rng)
    features_q, features_g = rng.normal(size=(len(query), 8)), rng.normal(size=(len(gallery), 8))
    result = evaluate(features_q, features_g, query, gallery)["standard"]
    summary = summary_with_intervals(result, query.pids, resamples=200)
    for metric in ("R-1", "R-5", "R-10", "R-20", "mAP"):
        low, high = summary["intervals"][metric]
        assert low <= summary[metric] <= high
    assert format_cell(52.94, [47.1, 58.26]) == "52.9 [47.1, 58.3]"
    assert format_cell(52.94, None) == "52.9" and format_cell(None, None) == "not measured"

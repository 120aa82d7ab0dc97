"""How far to trust a measured R-k / mAP (SPEC §7): bootstrap intervals over query identities,
the measured chance level of a test set, and paired comparisons of two runs on the same queries.

The resampling unit is the query identity, not the query: one person's tracklets are not
independent draws, so resampling them one by one would make the intervals too narrow. A resample
draws the identities that have a scored query, with replacement, and recomputes the metric over
all their queries — so the metric stays "mean over queries", as the evaluator computes it.

Everything is vectorised over resamples: each identity's per-metric sums form a small
(identities × metrics) matrix, a resample is a vector of draw counts, and a block of resamples is
one matrix product. Blocks are sized so that no array exceeds `MAX_BLOCK_CELLS` entries, whatever
the number of identities or resamples.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.metrics import (
    DEFAULT_RANKS,
    SETTINGS,
    Labels,
    QueryScores,
    SettingResult,
    evaluate_blocks,
)

LEVEL = 0.95
RESAMPLES = 1000
MAX_BLOCK_CELLS = 1 << 20  # entries of one (resamples × identities) block of draw counts
VERDICTS = ("holds", "reversed", "within noise")


def metric_names(ranks: Sequence[int] = DEFAULT_RANKS) -> tuple[str, ...]:
    return (*(f"R-{r}" for r in ranks), "mAP")


def _identity_sums(scores: QueryScores, identities: np.ndarray, metrics: Sequence[str]):
    """((G, M) per-identity sums of each metric's per-query values in percent, (G,) scored queries
    per identity), over the G identities that have a scored query."""
    valid = scores.valid
    _, codes = np.unique(np.asarray(identities)[valid], return_inverse=True)
    codes = codes.reshape(-1)
    groups = int(codes.max(initial=-1)) + 1
    sums = np.stack(
        [np.bincount(codes, 100.0 * scores.values(m), minlength=groups) for m in metrics], axis=1
    ).reshape(groups, len(metrics))
    return sums, np.bincount(codes, minlength=groups)


def _draw_counts(rng: np.random.Generator, groups: int, resamples: int) -> Iterator[np.ndarray]:
    """Blocks of (b, groups) float64 draw counts: each row is one bootstrap resample of `groups`
    identities drawn with replacement. The stream does not depend on the block size."""
    block = max(1, MAX_BLOCK_CELLS // max(1, groups))
    for start in range(0, resamples, block):
        b = min(block, resamples - start)
        draws = rng.integers(0, groups, size=(b, groups))
        flat = (draws + np.arange(b)[:, None] * groups).ravel()
        yield np.bincount(flat, minlength=b * groups).reshape(b, groups).astype(np.float64)


def _resampled_means(sums_list, counts, resamples: int, seed: int) -> list[np.ndarray]:
    """For each (G, M) sums matrix (sharing `counts` and therefore the same draws): the (B, M)
    metric values of B resamples. Every identity has a scored query, so no total is zero."""
    rng = np.random.default_rng(seed)
    out = [[] for _ in sums_list]
    for weights in _draw_counts(rng, len(counts), resamples):
        total = weights @ counts.astype(np.float64)
        for i, sums in enumerate(sums_list):
            out[i].append((weights @ sums) / total[:, None])
    return [np.concatenate(parts) for parts in out]


def _interval(samples: np.ndarray, level: float) -> np.ndarray:
    """(M, 2) percentile intervals of (B, M) samples."""
    tail = 100.0 * (1.0 - level) / 2.0
    return np.percentile(samples, [tail, 100.0 - tail], axis=0).T


def bootstrap_intervals(
    scores: QueryScores,
    identities: np.ndarray,
    ranks: Sequence[int] = DEFAULT_RANKS,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> dict[str, tuple[float, float]]:
    """95 % (by default) percentile intervals, in percent, of each R-k and mAP over resamples of
    the query identities (`identities`: one label per query, in query order)."""
    metrics = metric_names(ranks)
    if len(identities) != len(scores.first):
        raise ValueError(f"{len(identities)} identities for {len(scores.first)} queries")
    sums, counts = _identity_sums(scores, identities, metrics)
    if len(counts) == 0:
        return {}
    (samples,) = _resampled_means([sums], counts, resamples, seed)
    bounds = _interval(samples, level)
    return {m: (float(lo), float(hi)) for m, (lo, hi) in zip(metrics, bounds, strict=True)}


@dataclass(frozen=True)
class Difference:
    """run A − run B on one metric over the same queries, in percentage points."""

    metric: str
    difference: float
    low: float
    high: float
    identities: int  # resampled identities

    @property
    def verdict(self) -> str:
        """For the claim "A > B": holds when the whole interval is above 0, reversed when it is
        below, else within noise."""
        if self.low > 0:
            return "holds"
        if self.high < 0:
            return "reversed"
        return "within noise"

    def describe(self) -> str:
        return f"{self.metric} Δ {self.difference:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"


def paired_differences(
    a: QueryScores,
    b: QueryScores,
    identities: np.ndarray,
    ranks: Sequence[int] = DEFAULT_RANKS,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> dict[str, Difference]:
    """Paired bootstrap of A − B: both runs' metrics are recomputed on the same resampled query
    identities, so what the queries share (their difficulty) cancels. The two runs must have
    scored the same queries (same test set, same order)."""
    if not (len(a.first) == len(b.first) == len(identities)):
        raise ValueError("the two runs and the identities differ in number of queries")
    if not np.array_equal(a.valid, b.valid):
        raise ValueError("the two runs scored different queries; they are not on one test set")
    metrics = metric_names(ranks)
    sums_a, counts = _identity_sums(a, identities, metrics)
    sums_b, _ = _identity_sums(b, identities, metrics)
    if len(counts) == 0:
        return {}
    samples_a, samples_b = _resampled_means([sums_a, sums_b], counts, resamples, seed)
    bounds = _interval(samples_a - samples_b, level)
    point = (sums_a.sum(0) - sums_b.sum(0)) / counts.sum()
    return {
        m: Difference(m, float(p), float(lo), float(hi), len(counts))
        for m, p, (lo, hi) in zip(metrics, point, bounds, strict=True)
    }


def chance_levels(
    query: Labels,
    gallery: Labels,
    settings: tuple[str, ...] = SETTINGS,
    ranks: Sequence[int] = DEFAULT_RANKS,
    repeats: int = 100,
    seed: int = 0,
    chunk_size: int = 256,
) -> dict[str, dict[str, float]]:
    """What a random ranking scores on this test set, measured: the gallery ranked at random
    (uniform random distances) `repeats` times and scored by the evaluator itself. Mean over
    repeats, in percent, per setting and metric."""
    rng = np.random.default_rng(seed)
    metrics = metric_names(ranks)
    chunk_size = max(1, int(chunk_size))
    totals = {s: np.zeros(len(metrics)) for s in settings}
    max_rank = max(ranks)
    for _ in range(max(1, int(repeats))):
        blocks = (
            rng.random((min(chunk_size, len(query) - start), len(gallery)), dtype=np.float32)
            for start in range(0, len(query), chunk_size)
        )
        results = evaluate_blocks(blocks, query, gallery, settings, chunk_size, max_rank)
        for setting in settings:
            summary = results[setting].summary(tuple(ranks))
            totals[setting] += [summary[m] for m in metrics]
    count = max(1, int(repeats))
    return {
        s: {m: float(v / count) for m, v in zip(metrics, totals[s], strict=True)} for s in settings
    }


def summary_with_intervals(
    result: SettingResult,
    identities: np.ndarray,
    ranks: Sequence[int] = DEFAULT_RANKS,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict:
    """`SettingResult.summary` plus `"intervals": {metric: [low, high]}` (what metrics.json holds)."""
    summary = result.summary(tuple(ranks))
    if result.per_query is None:
        raise ValueError("this result carries no per-query scores to resample")
    intervals = bootstrap_intervals(result.per_query, identities, ranks, resamples, seed)
    summary["intervals"] = {m: [lo, hi] for m, (lo, hi) in intervals.items()}
    summary["identities"] = len(np.unique(np.asarray(identities)[result.per_query.valid]))
    return summary


def summaries_with_confidence(
    results: dict[str, SettingResult],
    query: Labels,
    gallery: Labels,
    ranks: Sequence[int] = DEFAULT_RANKS,
    resamples: int = RESAMPLES,
    seed: int = 0,
    chance_repeats: int = 100,
    chunk_size: int = 256,
) -> dict[str, dict]:
    """Per setting: the summary, its `"intervals"` and the test set's measured `"chance"` level —
    the `settings` object of metrics.json (also what per-branch evaluation reports).
    `chance_repeats` = 0 leaves the chance level out (it belongs to the test set, not a model)."""
    chance = (
        chance_levels(query, gallery, tuple(results), ranks, chance_repeats, seed, chunk_size)
        if chance_repeats > 0
        else {}
    )
    out = {}
    for setting, result in results.items():
        out[setting] = summary_with_intervals(result, query.pids, ranks, resamples, seed)
        if setting in chance:
            out[setting]["chance"] = chance[setting]
    return out


def describe_method(resamples: int, seed: int, chance_repeats: int) -> dict:
    """What metrics.json says about how its intervals and chance levels were obtained."""
    return {
        "interval": f"{LEVEL:.0%} percentile bootstrap, query identities resampled",
        "resamples": int(resamples),
        "seed": int(seed),
        "chance": f"mean of the evaluator on {int(chance_repeats)} random gallery rankings",
    }


def format_cell(value: float | None, interval: Sequence[float] | None) -> str:
    """`52.9 [47.1, 58.3]` — how every measured cell and table row shows a metric."""
    if value is None:
        return "not measured"
    if not interval:
        return f"{value:.1f}"
    return f"{value:.1f} [{interval[0]:.1f}, {interval[1]:.1f}]"

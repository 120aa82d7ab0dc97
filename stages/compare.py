"""`asgl-pipeline compare RUN_A RUN_B`: is run A better than run B beyond noise? A 95 % paired
bootstrap of A − B over the same queries (query identities resampled together), per evaluation
setting, on R-1 and mAP: the test behind the report's ordering verdicts, for any two runs scored on
one test set (two seeds, two loss weights, two pose sources, ...). Scores are recomputed from each
run's features.npz, so A, B and A − B come from the same numbers; nothing is trained or written.
Either side may be a probe record (`reports/probe_<cache>.json`, one cue: `--cue`, default bone
ratios), paired with a run of the same test set query by query."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.confidence import Difference
from pipeline.errors import StageError
from pipeline.metrics import SETTINGS
from pipeline.reporting.comparisons import (
    RunScores,
    aligned,
    compare_scores,
    probe_scores,
    run_scores,
)
from pipeline.reporting.measured import MeasuredRun, load_run
from pipeline.runs import METRICS_FILE, RunFolder


@dataclass(frozen=True)
class Comparison:
    setting: str
    a: float  # run A's value, from its features.npz
    b: float
    difference: Difference  # A − B with its paired interval and verdict


def _measured(run: str, runs_dir: str) -> MeasuredRun:
    folder = RunFolder.resolve(run, runs_dir)
    if not folder.is_evaluated():
        raise StageError(
            f"run {folder.path} has no {METRICS_FILE} — train it, or re-score it with "
            f"`asgl-pipeline evaluate --run {run}`"
        )
    try:
        return load_run(folder.path)
    except ValueError as error:
        raise StageError(
            f"{error} — re-score it with `asgl-pipeline evaluate --run {run}`"
        ) from None


def _scores(run: MeasuredRun) -> RunScores:
    scores = run_scores(run, SETTINGS)
    if scores is None:
        raise StageError(
            f"run {run.folder} has no usable features.npz to pair queries with — re-score it "
            f"with `asgl-pipeline evaluate --run {run.folder}`"
        )
    return scores


def _side(name: str, runs_dir: str, cue: str) -> tuple[str, RunScores]:
    """(display name, per-query scores) of a run, or of one cue of a probe record (a .json)."""
    if name.endswith(".json") and Path(name).is_file():
        try:
            return f"probe {cue}", probe_scores(json.loads(Path(name).read_text()), cue)
        except (OSError, ValueError, KeyError) as error:
            raise StageError(
                f"{name} is not a usable probe record ({error}) — re-run `asgl-pipeline probe`"
            ) from None
    run = _measured(name, runs_dir)
    return run.name, _scores(run)


def format_comparisons(comparisons: list[Comparison]) -> str:
    lines = [f"{'setting':<10}{'metric':<8}{'A':>7}{'B':>7}   {'A − B [95 % CI]':<24}verdict"]
    for c in comparisons:
        d = c.difference
        interval = f"{d.difference:+.1f} [{d.low:+.1f}, {d.high:+.1f}]"
        lines.append(
            f"{c.setting:<10}{d.metric:<8}{c.a:>7.1f}{c.b:>7.1f}   {interval:<24}{d.verdict}"
        )
    return "\n".join(lines)


def run(
    config,
    *,
    first: str,
    second: str,
    cue: str = "bone ratios",
    log: Callable[[str], None] = print,
) -> list[Comparison]:
    """Compare run `first` (A) with run `second` (B), names under `paths.runs_dir` or paths, or
    a probe record's `cue` on either side."""
    (name_a, scores_a), (name_b, scores_b) = (
        _side(name, config.paths.runs_dir, cue) for name in (first, second)
    )
    scores_a = aligned(scores_a, scores_b)  # a probe lists its queries in cache order
    comparisons, skipped = [], []
    for setting in SETTINGS:
        diffs, reason = compare_scores(scores_a, scores_b, setting, (name_a, name_b))
        if diffs is None:
            skipped.append((setting, reason))
            continue
        values_a, values_b = (s.results[setting].summary() for s in (scores_a, scores_b))
        comparisons += [Comparison(setting, values_a[m], values_b[m], d) for m, d in diffs.items()]
    if not comparisons:
        raise StageError(f"{skipped[0][1]} — compare two evaluated runs of one test set")
    identities = comparisons[0].difference.identities
    log(f"compare: A = {name_a}, B = {name_b}; paired bootstrap over {identities} query identities")
    log(format_comparisons(comparisons))
    for setting, reason in skipped:
        log(f"compare: {setting} not compared — {reason}")
    return comparisons

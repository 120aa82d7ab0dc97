"""`asgl-pipeline compare`: the paired bootstrap of two runs over the same queries, per setting."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from test_report import fake_features, write_run

from pipeline.metrics import QueryScores, result_from_scores
from pipeline.probe import scores_record
from pipeline.reporting.comparisons import RunScores, aligned, probe_scores
from pipeline.reporting.variants import APPEARANCE_ONLY, FULL
from stages.cli import main


def compare(runs_dir, *runs: str):
    return CliRunner().invoke(main, ["compare", "--set", f"paths.runs_dir={runs_dir}", *runs])


def rows(output: str) -> dict[tuple[str, str], list[str]]:
    """(setting, metric) → the rest of its printed row."""
    table = [
        line.split()
        for line in output.splitlines()
        if line.split()[:1] in (["cc"], ["standard"], ["sc"])
    ]
    return {(r[0], r[1]): r[2:] for r in table}


def test_a_clear_difference_holds_one_way_and_is_reversed_the_other(tmp_path):
    runs = tmp_path / "runs"
    write_run(
        runs,
        "good",
        FULL,
        cc=(45.0, 59.3),
        queries=80,
        with_extras=False,
        features=fake_features(80, noise=0.5, seed=1),
    )
    write_run(
        runs,
        "poor",
        APPEARANCE_ONLY,
        cc=(10.0, 20.0),
        queries=80,
        with_extras=False,
        features=fake_features(80, noise=3.0, seed=2),
    )
    result = compare(runs, "good", "poor")
    assert result.exit_code == 0, result.output
    assert "A = good, B = poor; paired bootstrap over 80 query identities" in result.output
    printed = rows(result.output)
    assert set(printed) == {(s, m) for s in ("standard", "cc", "sc") for m in ("R-1", "mAP")}
    a, b, difference, low = (float(v.strip("[,")) for v in printed[("cc", "R-1")][:4])
    assert difference == pytest.approx(a - b, abs=0.051) and 0 < low < difference
    assert printed[("cc", "R-1")][-1] == "holds"
    backwards = compare(runs, "poor", "good")
    assert rows(backwards.output)[("cc", "R-1")][-1] == "reversed"


def test_the_same_features_are_within_noise(tmp_path):
    runs = tmp_path / "runs"
    for name in ("seed0", "seed0-copy"):
        write_run(runs, name, FULL, queries=40, with_extras=False, features=fake_features(40))
    result = compare(runs, "seed0", str(runs / "seed0-copy"))  # a name or a path
    assert result.exit_code == 0, result.output
    cc_map = rows(result.output)[("cc", "mAP")]
    assert cc_map[2:] == ["+0.0", "[+0.0,", "+0.0]", "within", "noise"]


def test_runs_that_cannot_be_compared_are_one_clear_error(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "small", FULL, with_extras=False, features=fake_features(10))
    write_run(runs, "large", FULL, with_extras=False, features=fake_features(12))
    (runs / "unscored").mkdir()
    result = compare(runs, "small", "large")
    assert result.exit_code == 1 and "were not scored on one test set" in result.output
    result = compare(runs, "small", "unscored")
    assert result.exit_code == 1 and "has no metrics.json" in result.output
    assert "asgl-pipeline evaluate --run unscored" in result.output
    assert "Traceback" not in result.output


def test_a_probe_record_is_paired_query_by_query_in_the_run_order():
    """A probe lists its queries in cache (sorted key) order, a run in split order: `aligned`
    puts the probe's per-query outcomes under the run's queries before pairing."""
    keys = np.array(["s2_q", "s10_q", "s4_q"])  # a run's order; sorted: s10, s2, s4
    firsts = {"s2_q": 0, "s10_q": -1, "s4_q": 3}
    record = {
        "query_keys": sorted(keys),
        "gallery_keys": ["g1", "g2"],
        "query_pids": ["p10", "p2", "p4"],
        "per_query": {
            "bone ratios": {
                "standard": scores_record(
                    QueryScores(
                        np.array([firsts[k] for k in sorted(keys)]),
                        np.array([0.5 if firsts[k] >= 0 else np.nan for k in sorted(keys)]),
                    )
                )
            }
        },
    }
    probe = probe_scores(record, "bone ratios")
    run = RunScores(
        {"standard": result_from_scores(QueryScores(np.zeros(3, int), np.ones(3)))},
        keys,
        np.array(["g2", "g1"]),
        np.array(["p2", "p10", "p4"]),
    )
    paired = aligned(probe, run)
    assert paired.query_keys.tolist() == keys.tolist()
    assert paired.query_pids.tolist() == ["p2", "p10", "p4"]
    assert paired.results["standard"].per_query.first.tolist() == [0, -1, 3]
    assert paired.results["standard"].skipped == 1
    with pytest.raises(ValueError, match="no cue 'cadence'"):
        probe_scores(record, "cadence")
    other = RunScores(run.results, np.array(["a", "b", "c"]), run.gallery_keys, run.query_pids)
    assert aligned(probe, other) is probe  # another test set: left for compare to refuse

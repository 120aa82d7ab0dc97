"""`asgl-pipeline compare`: the paired bootstrap of two runs over the same queries, per setting."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from test_report import fake_features, write_run

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

"""The ablate stage through the CLI, with `stages.train.run` replaced by a fake that writes a
schema-exact run folder: variant naming, shared setup, skip-finished, and the error exits."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

import stages.train
from pipeline.config import load_config, load_config_file, save_config
from pipeline.reporting.variants import TABLE_VARIANTS, Variant
from stages.cli import main


@pytest.fixture
def trained(monkeypatch):
    """Replace training with a fake that records each config and writes the run folder."""
    calls = []

    def fake_train(config):
        calls.append(config)
        folder = f"{config.paths.runs_dir}/{config.train.run}"
        save_config(config, f"{folder}/config.toml")
        metrics = {
            "run": config.train.run,
            "dataset": config.data.dataset,
            "data_root": config.data.root,
            "profile": config.profile,
            "date": "2026-11-23",
            "epochs": config.train.epochs,
            "backbone_weights": None,
            "variant": dataclasses.asdict(Variant.from_model_config(config.model)),
            "settings": {
                s: {
                    "R-1": 1.0,
                    "R-5": 2.0,
                    "R-10": 3.0,
                    "R-20": 4.0,
                    "mAP": 1.0,
                    "queries": 4,
                    "skipped": 0,
                    "cmc": [1.0] * 20,
                }
                for s in ("standard", "cc", "sc")
            },
        }
        with open(f"{folder}/metrics.json", "w") as handle:
            json.dump(metrics, handle)

    monkeypatch.setattr(stages.train, "run", fake_train)
    return calls


def ablate(tmp_path, *options):
    args = [
        "ablate",
        "--profile",
        "demo",
        "--root",
        "data/x",
        "--set",
        f"paths.runs_dir={tmp_path}",
        "--set",
        "train.run=base",
        *options,
    ]
    return CliRunner().invoke(main, args)


def test_one_switch_trains_that_variant_with_the_same_setup(tmp_path, trained):
    result = ablate(tmp_path, "--no-gait")
    assert result.exit_code == 0, result.output
    assert [c.train.run for c in trained] == ["base-no-gait"]
    config = trained[0]
    assert (config.model.use_appearance, config.model.use_shape, config.model.use_gait) == (
        True,
        True,
        False,
    )
    demo = load_config("demo")
    assert config.profile == "demo" and config.train.seed == demo.train.seed
    assert config.train.epochs == demo.train.epochs and config.data.root == "data/x"
    assert load_config_file(tmp_path / "base-no-gait" / "config.toml").model.use_gait is False


@pytest.mark.parametrize(
    ("options", "name"),
    [
        (["--no-shape"], "base-no-shape"),
        (["--no-appearance"], "base-shape-gait"),
        (["--no-shape", "--no-gait"], "base-appearance-only"),
        (["--no-shape", "--no-gait", "--graph", "gcn"], "base-appearance-only"),
        (["--graph", "gcn"], "base-gcn"),
        (["--pose", "2d"], "base-2d"),
        (["--no-gait", "--graph", "gcn"], "base-no-gait-gcn"),
    ],
)
def test_run_folders_are_named_after_the_variant(tmp_path, trained, options, name):
    result = ablate(tmp_path, *options)
    assert result.exit_code == 0, result.output
    assert [c.train.run for c in trained] == [name]


def test_all_trains_every_table_variant_then_skips_finished_ones(tmp_path, trained):
    result = ablate(tmp_path, "--all")
    assert result.exit_code == 0, result.output
    names = [c.train.run for c in trained]
    assert names == [
        "base",
        "base-appearance-only",
        "base-shape-gait",
        "base-no-gait",
        "base-no-shape",
        "base-gcn",
        "base-2d",
    ]
    assert [Variant.from_model_config(c.model) for c in trained] == list(TABLE_VARIANTS)
    assert len({(c.train.seed, c.data.root, c.profile) for c in trained}) == 1

    trained.clear()
    result = ablate(tmp_path, "--all")
    assert result.exit_code == 0 and trained == []
    assert "0 trained, 7 already finished" in result.output


def test_all_resumes_an_interrupted_variant(tmp_path, trained):
    ablate(tmp_path, "--no-gait")
    (tmp_path / "base-gcn" / "checkpoints").mkdir(parents=True)
    (tmp_path / "base-gcn" / "checkpoints" / "last.pt").write_bytes(b"")
    trained.clear()
    result = ablate(tmp_path, "--all")
    assert result.exit_code == 0, result.output
    assert "base-no-gait" not in [c.train.run for c in trained]
    assert {c.train.run: c.train.resume for c in trained}["base-gcn"] is True
    assert {c.train.run: c.train.resume for c in trained}["base-2d"] is False


def test_dropping_every_branch_is_a_clear_error(tmp_path, trained):
    result = ablate(tmp_path, "--no-appearance", "--no-shape", "--no-gait")
    assert result.exit_code == 1 and trained == []
    assert "at least one branch must remain" in result.output
    assert "Traceback" not in result.output


def test_no_switch_and_mixed_all_are_errors(tmp_path, trained):
    result = ablate(tmp_path)
    assert result.exit_code == 1 and "nothing to ablate" in result.output
    result = ablate(tmp_path, "--all", "--no-gait")
    assert result.exit_code == 1 and "--all trains every" in result.output
    assert trained == []


def test_a_full_model_with_another_setup_is_refused(tmp_path, trained):
    base = load_config("demo")
    base = dataclasses.replace(base, train=dataclasses.replace(base.train, run="base", seed=7))
    save_config(base, tmp_path / "base" / "config.toml")
    result = ablate(tmp_path, "--no-gait")
    assert result.exit_code == 1 and trained == []
    assert "train.seed=7 there but 0 here" in result.output
    assert "data.root='cache/synthetic' there but 'data/x' here" in result.output


def test_variant_suffixes():
    assert Variant().suffix() == ""
    assert Variant(use_appearance=False, pose="2d").suffix() == "shape-gait-2d"
    assert Variant(use_shape=False, use_gait=False, graph="gcn").suffix() == "appearance-only"
    with pytest.raises(ValueError):
        Variant(False, False, False).suffix()

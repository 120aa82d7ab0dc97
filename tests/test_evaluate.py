"""The evaluate stage on a run folder made by hand (an untrained tiny model: evaluation does not
care how the weights were obtained, and no training keeps this fast)."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from run_checks import assert_metrics_are_those_of_the_features, features_labels
from tiny_models import TINY_RUN_MODEL

from pipeline.config import eval_stride, load_config, save_config, to_toml
from pipeline.data import load_frames, load_splits, test_clip_indices
from pipeline.errors import StageError
from pipeline.metrics import SETTINGS, Labels, evaluate
from pipeline.models import build_model
from pipeline.training import save_checkpoint
from stages import evaluate as evaluate_stage
from stages.cli import main

TINY_MODEL = TINY_RUN_MODEL


def quiet(_message):
    pass


@pytest.fixture(scope="module")
def run_folder(synthetic_root, skeleton_cache, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    config = load_config(
        "demo",
        overrides={
            "data": {"dataset": "ccvid", "root": str(synthetic_root), "cache": str(skeleton_cache)},
            "paths": {"runs_dir": str(runs)},
            "model": TINY_MODEL,
            "train": {"run": "hand", "height": 32, "width": 16, "num_workers": 0, "epochs": 3},
            "eval": {"seq_len": 3, "batch_size": 4},
        },
    )
    torch.manual_seed(0)
    model = build_model(config.model, num_classes=2)
    with torch.no_grad():  # give BatchNorm non-trivial statistics, as training would
        model.train()(torch.randn(4, 3, 3, 32, 16), torch.randn(4, 3, 14, 3) * 0.01)
    folder = runs / "hand"
    save_config(config, folder / "config.toml")
    save_checkpoint(
        folder / "checkpoints" / "last.pt",
        {"model": model.state_dict(), "epoch": 3, "num_classes": 2, "config": to_toml(config)},
    )
    return config, folder, model.eval()


def test_metrics_json_is_the_evaluation_of_features_npz(run_folder):
    config, folder, _ = run_folder
    metrics = evaluate_stage.run(config, log=quiet)
    splits = load_splits(config, needs_joints=True, splits=("query", "gallery"), log=quiet)
    written = assert_metrics_are_those_of_the_features(folder, splits)
    assert written == json.loads(json.dumps(metrics))
    assert metrics["epochs"] == 3 and metrics["selection"] == {
        "rule": "last",
        "checkpoint": "last.pt",
        "epoch": 3,
    }
    assert metrics["clips"] == {"rule": "CAL _recombination_for_testset", "seq_len": 3, "stride": 4}
    assert metrics["confidence"]["resamples"] == 1000
    for name, setting in metrics["settings"].items():
        for metric in ("R-1", "mAP"):
            low, high = setting["intervals"][metric]
            assert low <= setting[metric] <= high, (name, metric)
            assert 0 <= setting["chance"][metric] <= 100
    for branch in metrics["branches"].values():  # each branch alone: intervals, no own chance
        cc = branch["settings"]["cc"]
        assert cc["intervals"]["R-1"][0] <= cc["R-1"] <= cc["intervals"]["R-1"][1]
        assert "chance" not in cc
    # The comparison can fail: the same features with the gallery labels in another order score
    # differently (this untrained model's features are not constant).
    with np.load(folder / "features.npz", allow_pickle=False) as features:
        assert (str(features["clip_rule"]), int(features["clip_stride"])) == (
            "CAL _recombination_for_testset",
            4,
        )
        gallery = features_labels(features, "gallery")
        shuffled = Labels(
            *(np.roll(values, 1) for values in (gallery.pids, gallery.cameras, gallery.clothes))
        )
        other = evaluate(
            features["query_features"],
            features["gallery_features"],
            features_labels(features, "query"),
            shuffled,
        )
    assert any(other[s].mAP != written["settings"][s]["mAP"] / 100 for s in SETTINGS)


def test_evaluation_is_deterministic(run_folder):
    config, folder, _ = run_folder
    metrics = evaluate_stage.run(config, log=quiet)
    first = dict(np.load(folder / "features.npz", allow_pickle=False))
    again = evaluate_stage.run(config, log=quiet)  # same numbers, same features
    assert again["settings"] == metrics["settings"]
    second = np.load(folder / "features.npz", allow_pickle=False)
    assert first.keys() == set(second.keys())
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_the_frame_cache_gives_the_features_of_decoded_frames(run_folder, tmp_path):
    """Features and metrics are the same bits whether the clips' frames are decoded from their
    files or read from the frame cache, which goes where this invocation says (not the run)."""
    config, folder, _ = run_folder

    def evaluated(data, log=quiet):
        metrics = evaluate_stage.run(dataclasses.replace(config, data=data), log=log)
        return metrics, dict(np.load(folder / "features.npz", allow_pickle=False))

    decoded_metrics, decoded = evaluated(dataclasses.replace(config.data, frame_cache_gb=0))
    where, lines = tmp_path / "frames", []
    metrics, cached = evaluated(
        dataclasses.replace(config.data, frame_cache=str(where)), log=lines.append
    )
    assert any(line.startswith("frame cache:") for line in lines) and list(where.glob("*.npy"))
    assert decoded.keys() == cached.keys()
    assert all(np.array_equal(decoded[k], cached[k]) for k in decoded)
    assert metrics["settings"] == decoded_metrics["settings"]
    assert metrics["branches"] == decoded_metrics["branches"]


def test_features_follow_the_test_clip_rule(run_folder):
    """A tracklet's feature = mean of its deterministic clips' embeddings, L2-normalised."""
    config, folder, model = run_folder
    evaluate_stage.run(config, log=quiet)
    features = np.load(folder / "features.npz", allow_pickle=False)
    splits = load_splits(config, needs_joints=True, splits=("query", "gallery"), log=quiet)
    source = splits.query[0]
    clips = test_clip_indices(source.num_frames, config.eval.seq_len, eval_stride(config))
    # 8 frames, L = 3, s = 4: no full block of 12; 2 clips at stride 2, then frames 6, 7 padded
    assert clips == [[0, 2, 4], [1, 3, 5], [6, 7, 6]]
    with torch.no_grad():
        embeddings = [
            model(
                torch.from_numpy(load_frames(source.tracklet, clip, 32, 16))[None],
                torch.from_numpy(source.joints[clip])[None],
            ).embedding[0]
            for clip in clips
        ]
    expected = torch.nn.functional.normalize(torch.stack(embeddings).mean(0), dim=0).numpy()
    assert features["query_keys"][0] == source.key
    # One clip at a time and a batch of clips round differently in float32 (measured up to 4e-5
    # per element of the normalised feature), so the tolerance sits above that noise.
    np.testing.assert_allclose(features["query_features"][0], expected, atol=2e-4)


def test_cli_prints_the_table(run_folder):
    config, folder, _ = run_folder
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--profile",
            "demo",
            "--run",
            "hand",
            "--device",
            "cpu",
            "--set",
            f"paths.runs_dir={folder.parent}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "setting" in result.output and "standard" in result.output and "mAP" in result.output
    assert "R-1 [95 % CI]" in result.output and "chance R-1/mAP" in result.output


def test_validation_selected_run_is_evaluated_with_best_pt(run_folder, tmp_path):
    config, folder, model = run_folder
    val_config = dataclasses.replace(
        config,
        train=dataclasses.replace(config.train, run="val", select="val", val_ids=1),
        paths=dataclasses.replace(config.paths, runs_dir=str(tmp_path)),
    )
    save_config(val_config, tmp_path / "val" / "config.toml")
    last = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    save_checkpoint(tmp_path / "val" / "checkpoints" / "last.pt", {**last, "val_pids": ["001"]})
    save_checkpoint(
        tmp_path / "val" / "checkpoints" / "best.pt",
        {"model": model.state_dict(), "epoch": 2, "score": 12.5, "config": to_toml(val_config)},
    )
    metrics = evaluate_stage.run(val_config, log=quiet)
    assert metrics["selection"] == {
        "rule": "val",
        "checkpoint": "best.pt",
        "epoch": 2,
        "val_ids": ["001"],
        "val_map": 12.5,
    }
    assert metrics["epochs"] == 3


def test_unknown_run_is_one_clear_error(run_folder, tmp_path):
    config, _, _ = run_folder
    missing = dataclasses.replace(config, train=dataclasses.replace(config.train, run="nope"))
    with pytest.raises(StageError, match="no trained run at .*nope"):
        evaluate_stage.run(missing, log=quiet)
    result = CliRunner().invoke(
        main, ["evaluate", "--run", "nope", "--set", f"paths.runs_dir={tmp_path}"]
    )
    assert result.exit_code == 1 and "no trained run" in result.output
    assert "Traceback" not in result.output


def test_checkpoint_that_does_not_fit_the_config(run_folder, tmp_path):
    config, folder, _ = run_folder
    other = dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, fusion_dim=32),
        paths=dataclasses.replace(config.paths, runs_dir=str(tmp_path)),
    )
    save_config(other, tmp_path / "hand" / "config.toml")
    (tmp_path / "hand" / "checkpoints").mkdir()
    (tmp_path / "hand" / "checkpoints" / "last.pt").write_bytes(
        (folder / "checkpoints" / "last.pt").read_bytes()
    )
    with pytest.raises(StageError, match="does not fit the model"):
        evaluate_stage.run(other, log=quiet)


@pytest.mark.parametrize("num_frames", [1, 3, 4, 5, 9])
def test_every_tracklet_gets_a_unit_feature_from_its_own_clips(num_frames):
    """1-frame, n < L, n mod L = 0, 1 and L − 1 tracklets (L = 4, CAL's clips at stride 2): none
    is left with a zero feature, and each feature is the mean of its own clips' embeddings."""
    from tiny_models import tiny_model_config

    from pipeline.data import ClipSource
    from pipeline.evaluation import extract_features
    from pipeline.layouts import Tracklet

    config = load_config(
        "demo",
        overrides={
            "train": {"height": 32, "width": 16},
            "eval": {"seq_len": 4, "stride": 2, "batch_size": 3},
        },
    )
    torch.manual_seed(0)
    model = build_model(tiny_model_config(use_appearance=False), num_classes=0).eval()
    rng = np.random.default_rng(num_frames)
    sources = [
        ClipSource(
            Tracklet(f"t{i}", (), "", str(i), f"{i}/a", 1, "query"),
            n,
            rng.normal(size=(n, 14, 3)).astype(np.float32),
            -1,
            1,
            0,
        )
        for i, n in enumerate([num_frames, 2])
    ]
    features = extract_features(model, sources, config, torch.device("cpu"))
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    source = sources[0]
    with torch.no_grad():
        clips = [torch.from_numpy(source.joints[c]) for c in test_clip_indices(num_frames, 4, 2)]
        expected = model(None, torch.stack(clips)).embedding.mean(0)
    np.testing.assert_allclose(
        features[0], torch.nn.functional.normalize(expected, dim=0).numpy(), atol=1e-5
    )

"""The train stage on the tiny synthetic set with a tiny model (ResNet-18 at 32×16, 4 frames)."""

import csv
import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import TINY_RUN_MODEL

from pipeline.config import load_config
from pipeline.data import load_splits
from pipeline.losses import LossParts, ReIDLoss
from pipeline.training import LOG_COLUMNS, fit, time_training_steps
from stages import StageError
from stages import train as train_stage

TINY_MODEL = {
    **TINY_RUN_MODEL,
    "dropout": 0.1,  # so that resuming must restore the torch RNG too
}
TINY_TRAIN = {
    "epochs": 1,
    "lr": 1e-3,
    "lr_step": 1,
    "height": 32,
    "width": 16,
    "seq_len": 4,
    "sample_stride": 2,
    "ids_per_batch": 2,
    "clips_per_id": 2,
    "num_workers": 0,
}


def tiny_config(root, cache, runs_dir, **train):
    return load_config(
        "demo",
        overrides={
            "data": {"dataset": "ccvid", "root": str(root), "cache": str(cache)},
            "paths": {"runs_dir": str(runs_dir)},
            "model": TINY_MODEL,
            "train": {**TINY_TRAIN, **train},
            "eval": {"seq_len": 4, "batch_size": 8},
        },
    )


def quiet(_message):
    pass


@pytest.fixture(scope="module")
def trained_run(synthetic_root, skeleton_cache, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    config = tiny_config(synthetic_root, skeleton_cache, runs, run="tiny")
    metrics = train_stage.run(config, log=quiet, progress=False)
    return config, runs / "tiny", metrics


def test_run_folder_holds_everything(trained_run):
    config, folder, metrics = trained_run
    assert (folder / "config.toml").is_file()
    with (folder / "train_log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and tuple(rows[0]) == LOG_COLUMNS and rows[0]["epoch"] == "1"
    state = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and {"model", "optimizer", "scheduler", "rng", "sampler"} <= set(
        state
    )

    written = json.loads((folder / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics))
    for key in ("run", "dataset", "data_root", "profile", "date", "epochs", "backbone_weights"):
        assert key in written
    assert written["epochs"] == 1 and written["profile"] == "demo" and written["run"] == "tiny"
    assert written["variant"] == {
        "use_appearance": True, "use_shape": True, "use_gait": True, "graph": "gat", "pose": "3d"
    }  # fmt: skip
    assert written["selection"]["rule"] == "last"
    for setting in ("standard", "cc", "sc"):
        scores = written["settings"][setting]
        assert {"R-1", "R-5", "R-10", "R-20", "mAP", "queries", "skipped", "cmc"} <= set(scores)
        assert len(scores["cmc"]) == 20 and 0.0 <= scores["mAP"] <= 100.0
        assert scores["queries"] + scores["skipped"] == written["tracklets"]["query"]

    features = np.load(folder / "features.npz", allow_pickle=False)
    for prefix in ("query", "gallery"):
        count = written["tracklets"][prefix]
        assert features[f"{prefix}_features"].shape == (count, 16)
        for name in ("pids", "cameras", "clothes", "keys", "paths"):
            assert len(features[f"{prefix}_{name}"]) == count
    norms = np.linalg.norm(features["query_features"], axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(
    synthetic_root, skeleton_cache, tmp_path
):
    def train(run_dir, epochs, resume=False):
        config = tiny_config(synthetic_root, skeleton_cache, tmp_path, epochs=epochs, resume=resume)
        splits = load_splits(config, needs_joints=True, log=quiet)
        return fit(config, splits, run_dir, log=quiet, progress=False)

    straight = train(tmp_path / "straight", epochs=2)
    train(tmp_path / "interrupted", epochs=1)
    resumed = train(tmp_path / "interrupted", epochs=2, resume=True)

    expected, got = straight.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    assert [r["loss"] for r in straight.log_rows] == [float(r["loss"]) for r in resumed.log_rows]
    on_disk = torch.load(tmp_path / "interrupted" / "checkpoints" / "last.pt", weights_only=True)
    assert on_disk["epoch"] == 2
    assert all(torch.equal(on_disk["model"][k], expected[k]) for k in expected)


def test_existing_run_needs_resume_and_resume_needs_a_checkpoint(trained_run, tmp_path):
    config, folder, _ = trained_run
    with pytest.raises(StageError, match="already holds a trained checkpoint .* --resume"):
        train_stage.run(config, log=quiet)
    fresh = dataclasses.replace(
        config, train=dataclasses.replace(config.train, run="new", resume=True)
    )
    with pytest.raises(StageError, match="nothing to resume"):
        train_stage.run(fresh, log=quiet)


def test_resume_with_other_settings_is_refused(trained_run):
    config, _, _ = trained_run
    changed = dataclasses.replace(
        config, train=dataclasses.replace(config.train, lr=0.5, resume=True)
    )
    with pytest.raises(StageError, match=r"other settings \(train.lr: 0.001 → 0.5\)"):
        train_stage.run(changed, log=quiet)


def test_nan_loss_stops_with_a_message_and_keeps_the_last_checkpoint(
    synthetic_root, skeleton_cache, tmp_path, monkeypatch
):
    real_forward = ReIDLoss.forward
    calls = {"n": 0}

    def diverging(self, embeddings, logits, labels):
        calls["n"] += 1
        parts = real_forward(self, embeddings, logits, labels)
        if calls["n"] > 2:  # epoch 1 has two steps; the first step of epoch 2 diverges
            return LossParts(parts.total * float("nan"), parts.cross_entropy, parts.triplet)
        return parts

    monkeypatch.setattr(ReIDLoss, "forward", diverging)
    config = tiny_config(synthetic_root, skeleton_cache, tmp_path, run="nan", epochs=3)
    with pytest.raises(StageError, match="loss is nan at epoch 2, step 1 .* last good checkpoint"):
        train_stage.run(config, log=quiet, progress=False)
    state = torch.load(tmp_path / "nan" / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    assert not (tmp_path / "nan" / "metrics.json").exists()


def test_validation_selection_keeps_the_best_epoch(synthetic_root, skeleton_cache, tmp_path):
    # The tiny set has only two training identities, so validate on the (disjoint) query
    # identities here; carving val identities out of train is tested in test_data.py.
    config = tiny_config(synthetic_root, skeleton_cache, tmp_path, epochs=2, select="val")
    splits = load_splits(
        dataclasses.replace(config, train=dataclasses.replace(config.train, select="last")),
        True,
        log=quiet,
    )
    splits.val = splits.query
    result = fit(config, splits, tmp_path / "val", log=quiet, progress=False)
    assert [set(row) >= {"val_map"} for row in result.log_rows] == [True, True]
    best = torch.load(tmp_path / "val" / "checkpoints" / "best.pt", weights_only=True)
    scores = [row["val_map"] for row in result.log_rows]
    assert best["epoch"] == result.best_epoch == 1 + int(np.argmax(scores))
    assert best["score"] == pytest.approx(max(scores), abs=1e-3)


def test_training_step_timing_for_the_bench(synthetic_root, skeleton_cache, tmp_path):
    config = tiny_config(synthetic_root, skeleton_cache, tmp_path)
    splits = load_splits(config, needs_joints=True, log=quiet)
    timing = time_training_steps(config, splits, steps=1, warmup=0)
    assert timing["in_memory_s_per_step"] > 0 and timing["dataloader_s_per_step"] > 0
    assert timing["clips_per_step"] == 4


def free_loopback_port() -> int | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]
    except OSError:
        return None


def test_ddp_smoke_two_cpu_processes_on_gloo(synthetic_root, skeleton_cache, tmp_path):
    port = free_loopback_port()
    if port is None:
        pytest.skip("cannot bind a loopback port for the gloo rendezvous")
    settings = [
        f"model.{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
        for k, v in TINY_MODEL.items()
    ]
    settings += [f"train.{k}={v}" for k, v in TINY_TRAIN.items()]
    settings += ["eval.seq_len=4", f"paths.runs_dir={tmp_path}"]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        "-m",
        "stages.cli",
        "train",
        "--profile",
        "demo",
        "--root",
        str(synthetic_root),
        "--cache",
        str(skeleton_cache),
        "--device",
        "cpu",
        "--set",
        "train.run=ddp",
    ]  # fmt: skip  (the run name goes through --set: torchrun would take --run for --run-path)
    for setting in settings:
        command += ["--set", setting]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    done = subprocess.run(
        command, cwd=Path(__file__).parents[1], env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "world size 2" in output
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["epochs"] == 1
    state = torch.load(tmp_path / "ddp" / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1

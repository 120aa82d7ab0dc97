"""The train stage on the tiny synthetic set with a tiny model (ResNet-18 at 32×16, 4 frames)."""

import csv
import dataclasses
import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from run_checks import assert_metrics_are_those_of_the_features
from tiny_models import TINY_RUN_MODEL

from pipeline import training
from pipeline.config import load_config, save_config
from pipeline.data import TrainClips, load_splits
from pipeline.data import dataset as dataset_module
from pipeline.data.frames import attach_frame_cache
from pipeline.errors import FileSystemError, StageError
from pipeline.evaluation import extract_features
from pipeline.losses import LossParts, ReIDLoss
from pipeline.models import build_model
from pipeline.runs import RunFolder, load_checkpoint
from pipeline.runtime import Distributed, seed_everything
from pipeline.training import (
    LOG_COLUMNS,
    build_training_model,
    fit,
    make_loader,
    time_training_steps,
)
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

    splits = load_splits(config, needs_joints=True, splits=("query", "gallery"), log=quiet)
    written = assert_metrics_are_those_of_the_features(folder, splits)
    assert written == json.loads(json.dumps(metrics))
    for key in ("run", "dataset", "data_root", "profile", "date", "epochs", "backbone_weights"):
        assert key in written
    assert written["epochs"] == 1 and written["profile"] == "demo" and written["run"] == "tiny"
    assert written["variant"] == {
        "use_appearance": True,
        "use_shape": True,
        "use_gait": True,
        "graph": "gat",
        "pose": "3d",
    }
    assert written["selection"]["rule"] == "last"
    features = np.load(folder / "features.npz", allow_pickle=False)
    assert features["query_features"].shape == (written["tracklets"]["query"], 16)
    # The evaluated weights are the checkpoint's: its model re-extracts the same features.
    model = build_model(config.model, num_classes=state["num_classes"])
    model.load_state_dict(state["model"])
    again = extract_features(model, splits.query, config, torch.device("cpu"))
    np.testing.assert_allclose(again, features["query_features"], atol=1e-5)


# The clothes adversary (CAL) holds parameters of its own and acts from epoch 2 on: a resume after
# epoch 1 must restore its prototypes and switch its adversarial term on as the straight run does.
@pytest.mark.parametrize("clothes", [{}, {"clothes_loss": 1.0, "clothes_start": 1}])
def test_resume_ends_with_the_weights_of_an_uninterrupted_run(
    synthetic_root, skeleton_cache, tmp_path, clothes
):
    def train(run_dir, epochs, resume=False):
        config = tiny_config(
            synthetic_root, skeleton_cache, tmp_path, epochs=epochs, resume=resume, **clothes
        )
        splits = load_splits(config, needs_joints=True, log=quiet)
        return fit(config, splits, run_dir, log=quiet, progress=False)

    straight = train(tmp_path / "straight", epochs=2)
    train(tmp_path / "interrupted", epochs=1)
    resumed = train(tmp_path / "interrupted", epochs=2, resume=True)

    expected, got = straight.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == got.keys()
    if clothes:  # the adversary changed the weights, and its prototypes were restored
        assert on_disk_loss(tmp_path / "straight") and torch.equal(
            on_disk_loss(tmp_path / "straight")["adversary.prototypes"],
            on_disk_loss(tmp_path / "interrupted")["adversary.prototypes"],
        )
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    assert [r["loss"] for r in straight.log_rows] == [float(r["loss"]) for r in resumed.log_rows]
    on_disk = torch.load(tmp_path / "interrupted" / "checkpoints" / "last.pt", weights_only=True)
    assert on_disk["epoch"] == 2
    assert all(torch.equal(on_disk["model"][k], expected[k]) for k in expected)


def on_disk_loss(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["loss"]


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

    def diverging(self, embeddings, logits, labels, branches=None, clothes=None):
        calls["n"] += 1
        parts = real_forward(self, embeddings, logits, labels, branches, clothes)
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


def test_full_disk_at_a_checkpoint_is_one_error_and_the_log_stays_behind_it(
    synthetic_root, skeleton_cache, tmp_path, monkeypatch
):
    # train_log.csv used to be written first and list an epoch whose checkpoint never was.
    real_save = torch.save
    calls = {"n": 0}

    def fills_the_disk(state, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the checkpoint of epoch 2
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(state, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fills_the_disk)
    config = tiny_config(synthetic_root, skeleton_cache, tmp_path, run="full", epochs=2)
    folder = tmp_path / "full"
    with pytest.raises(
        FileSystemError, match=f"cannot write {folder}/checkpoints/last.pt: no space"
    ):
        train_stage.run(config, log=quiet, progress=False)
    with (folder / "train_log.csv").open() as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1"]
    assert torch.load(folder / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert [p.name for p in (folder / "checkpoints").iterdir()] == ["last.pt"]

    monkeypatch.setattr(torch, "save", real_save)  # space again: the resume finishes the run
    resumed = dataclasses.replace(config, train=dataclasses.replace(config.train, resume=True))
    train_stage.run(resumed, log=quiet, progress=False)
    with (folder / "train_log.csv").open() as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]


def test_a_checkpoint_holding_code_is_refused_in_our_words(tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (os.system, ("echo this must never run",))

    path = tmp_path / "last.pt"
    torch.save({"model": RunsCode(), "epoch": 1}, path)
    with pytest.raises(StageError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert f"checkpoint {path} cannot be used" in message and "refused" in message
    assert "weights_only" not in message  # torch's advice to load it anyway is not repeated


def test_bad_backbone_weights_are_refused_before_the_run_folder_exists(
    synthetic_root, skeleton_cache, tmp_path
):
    notes = tmp_path / "notes.pth"
    notes.write_text("not a checkpoint")
    config = tiny_config(synthetic_root, skeleton_cache, tmp_path / "runs", run="bw")
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, backbone_weights=str(notes))
    )
    with pytest.raises(
        StageError, match=f"--backbone-weights: {notes} cannot be used: it is damaged"
    ):
        train_stage.run(config, log=quiet, progress=False)
    assert not (tmp_path / "runs").exists()


def test_a_run_in_use_is_refused_and_left_alone(synthetic_root, skeleton_cache, tmp_path):
    config = tiny_config(synthetic_root, skeleton_cache, tmp_path, run="busy")
    with RunFolder(tmp_path / "busy").lock("evaluate"):  # as another process holds it
        with pytest.raises(
            StageError, match=r"run folder .*busy is in use .*asgl-pipeline evaluate"
        ):
            train_stage.run(config, log=quiet, progress=False)
    assert not (tmp_path / "busy").exists()


def test_resume_deletes_the_temporary_of_a_checkpoint_write_that_was_killed(trained_run):
    config, folder, _ = trained_run
    leftover = folder / "checkpoints" / ".last.pt.ab12cd.tmp"  # as a kill mid-write leaves it
    leftover.write_bytes(b"half a checkpoint")
    resumed = dataclasses.replace(config, train=dataclasses.replace(config.train, resume=True))
    train_stage.run(resumed, log=quiet, progress=False)  # finished: only re-evaluated
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["last.pt"]


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


def test_training_step_timing_for_the_bench(synthetic_root, skeleton_cache, tmp_path, monkeypatch):
    """The timer times the steps it runs: each step made 50 ms slower and each clip read 20 ms
    slower show up as lower bounds; the in-memory timing reads no clip beyond the held batch,
    and the frame-cache loader decodes no frame file."""
    config = tiny_config(synthetic_root, skeleton_cache, tmp_path)
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, frame_cache=str(tmp_path / "frames"))
    )
    splits = load_splits(config, needs_joints=True, log=quiet)
    cached = attach_frame_cache(config, splits, log=quiet)
    real_step, real_item = training.train_step, TrainClips.__getitem__
    real_decode = dataset_module.load_frames
    reads, decoded = [], []

    def slow_step(*args, **kwargs):
        time.sleep(0.05)
        return real_step(*args, **kwargs)

    def slow_item(self, item):
        reads.append(item)
        time.sleep(0.02)
        return real_item(self, item)

    def counted_decode(*args):
        decoded.append(args[0].key)
        return real_decode(*args)

    monkeypatch.setattr(training, "train_step", slow_step)
    monkeypatch.setattr(TrainClips, "__getitem__", slow_item)
    monkeypatch.setattr(dataset_module, "load_frames", counted_decode)
    timing = time_training_steps(config, splits, steps=2, warmup=0, cached=cached)
    assert timing["clips_per_step"] == 4
    # the held batch, then one batch per timed step of each loader
    assert len(reads) == 4 + 2 * 4 + 2 * 4
    assert len(decoded) == 4 + 2 * 4  # the frame-cache loader decoded nothing
    assert timing["in_memory_s_per_step"] >= 0.05
    assert timing["dataloader_s_per_step"] >= 0.05 + 4 * 0.02
    assert timing["frame_cache_s_per_step"] >= 0.05 + 4 * 0.02


def free_loopback_port() -> int | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]
    except OSError:
        return None


def one_process_on_both_ranks_batches(config, splits, world_size: int = 2):
    """What DDP computes, in one process: each step averages the gradients of the ranks' own
    batches (each forward sees only its rank's batch, as BatchNorm does under DDP), then one
    optimiser step. Returns the final parameters."""
    train = config.train
    seed_everything(train.seed)
    model = build_training_model(config, splits).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, train.lr_step, train.lr_gamma)
    loss_fn = ReIDLoss.from_config(train)
    ranks = [
        make_loader(config, splits, model.needs_frames, Distributed(world_size, rank, rank))
        for rank in range(world_size)
    ]
    steps = 0
    for epoch in range(train.epochs):
        for sampler, _ in ranks:
            sampler.set_epoch(epoch)
        for batches in zip(*(loader for _, loader in ranks), strict=True):
            optimizer.zero_grad(set_to_none=True)
            for frames, joints, labels, *_ in batches:
                output = model(frames, joints)
                loss = loss_fn(output.embedding, output.logits, labels, output.projected).total
                (loss / world_size).backward()
            optimizer.step()
            steps += 1
        scheduler.step()
    assert steps == train.epochs  # one global step per epoch on the tiny set
    return dict(model.named_parameters())


def test_ddp_two_gloo_processes_end_with_the_weights_of_one_process(
    synthetic_root, skeleton_cache, tmp_path
):
    port = free_loopback_port()
    if port is None:
        pytest.skip("cannot bind a loopback port for the gloo rendezvous")
    # Dropout and branch dropout off: under DDP each process draws its own masks, which one
    # process cannot replay. Skeleton branches only: the tiny ResNet at 32×16 has many weights
    # whose true gradient is ~0, and Adam turns their rounding noise into ±lr steps that differ
    # between any two summations.
    config = tiny_config(synthetic_root, skeleton_cache, tmp_path, run="ddp", epochs=2)
    model_config = dataclasses.replace(
        config.model, dropout=0.0, branch_dropout=0.0, use_appearance=False
    )
    config = dataclasses.replace(config, model=model_config)
    save_config(config, tmp_path / "ddp.toml")
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
        str(Path(__file__).with_name("ddp_worker.py")),
        str(tmp_path / "ddp.toml"),
        str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    done = subprocess.run(
        command, cwd=Path(__file__).parents[1], env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "world size 2" in output
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["epochs"] == 2

    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    saved = torch.load(tmp_path / "ddp" / "checkpoints" / "last.pt", weights_only=True)["model"]
    splits = load_splits(config, needs_joints=True, log=quiet)
    expected = one_process_on_both_ranks_batches(config, splits)
    assert expected.keys() <= rank0.keys()
    for name in expected:
        assert torch.equal(rank0[name], rank1[name]), name  # the processes never drift apart
        assert torch.equal(saved[name], rank0[name]), name
    # Equal to one process stepping on the mean gradient of both ranks' batches. Left out: the
    # biases (those right before a BatchNorm have true gradient 0) and the attention terms that a
    # softmax over neighbours cancels (the GAT's destination vector): Adam turns their rounding
    # noise into full steps, and they do not change a train-mode output (checked below). Measured:
    # 2 of the other 5,928 weights off by more than 1e-6 (up to 2e-5), with the graph priors on.
    checked = {n: v for n, v in expected.items() if not n.endswith(("bias", "att_dst"))}
    close = sum(int(((rank0[n] - v.detach()).abs() <= 1e-6).sum()) for n, v in checked.items())
    assert close / sum(v.numel() for v in checked.values()) > 0.995
    joints = torch.from_numpy(np.stack([s.joints[:4] for s in splits.train[:4]]))

    def embed(weights):
        model = build_model(config.model, num_classes=len(splits.class_pids))
        model.load_state_dict({**rank0, **weights})
        with torch.no_grad():
            return model.train()(None, joints).embedding

    seed_everything(config.train.seed)
    initial = build_model(config.model, num_classes=len(splits.class_pids)).state_dict()
    ddp_embedding = embed({})
    assert (ddp_embedding - embed(initial)).abs().max() > 0.1  # training moved the output
    one_process = embed({n: v.detach() for n, v in expected.items()})
    assert (ddp_embedding - one_process).abs().max() < 5e-3  # measured 5e-4


@pytest.mark.parametrize("priors", [False, True], ids=["paper-blocks", "graph-priors"])
def test_eval_mode_keeps_each_branch_at_its_training_spread(
    synthetic_root, skeleton_cache, tmp_path, priors
):
    """BatchNorm running statistics must have caught up after a short training: each branch's
    projected feature spreads across clips as much in eval mode as in training mode (within 3×),
    otherwise the fused embedding at test time is not the one that was trained. Training mode is
    run on batches formed as training forms them (ids_per_batch identities × clips_per_id clips):
    one batch of every clip would normalise by the spread between all identities, which no
    training batch ever saw."""
    config = tiny_config(synthetic_root, skeleton_cache, tmp_path, run="spread", epochs=3)
    config.model.gat_prior = config.model.stgat_prior = priors
    splits = load_splits(config, needs_joints=True, log=quiet)
    result = fit(config, splits, tmp_path / "spread", log=quiet, progress=False)
    from pipeline.data import TrainClips

    clips = TrainClips(splits.train, 4, 2, 32, 16, flip=False, load_frames=True)
    by_identity: dict[int, list[int]] = {}
    for index, pid in enumerate(clips.item_pids):
        by_identity.setdefault(pid, []).append(index)
    per_id, ids = config.train.clips_per_id, config.train.ids_per_batch
    groups = [items[:per_id] for items in by_identity.values() if len(items) >= per_id]
    batches = [sum(groups[i : i + ids], []) for i in range(0, len(groups) - ids + 1, ids)]
    model = result.model

    def projected(indices, mode):
        batch = [clips[(i, i)] for i in indices]
        model.train(mode == "train")
        with torch.no_grad():
            state = {k: v.clone() for k, v in model.state_dict().items()}
            out = model(torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch]))
            model.load_state_dict(state)  # the training-mode pass must not move the statistics
        return out.projected  # (B, K, D)

    features = {
        "train": torch.cat([projected(batch, "train") for batch in batches]),
        "eval": projected(sum(batches, []), "eval"),
    }
    spreads = {mode: f.std(dim=0).mean(dim=1) for mode, f in features.items()}
    ratio = spreads["eval"] / spreads["train"]
    assert torch.all(ratio > 1 / 3) and torch.all(ratio < 3), dict(
        zip(model.branch_names, ratio.tolist(), strict=True)
    )
    # and centred where training centred them: each branch's mean moves by less than its spread.
    # Not asserted with the graph priors: their shape feature is nearly constant per identity, so
    # in batches of 2 identities its training-mode BN centres on whichever 2 came together
    # (measured: shape shift 1.25 of its within-batch spread, appearance 0.40, gait 0.39).
    shift = (features["eval"].mean(dim=0) - features["train"].mean(dim=0)).abs().mean(dim=1)
    shift = shift / spreads["train"]
    if not priors:
        assert torch.all(shift < 1.0), dict(zip(model.branch_names, shift.tolist(), strict=True))


def test_each_branch_is_scored_alone_and_one_branch_scores_as_the_fusion(
    synthetic_root, skeleton_cache, tmp_path, trained_run
):
    _config, _run_dir, full = trained_run
    assert set(full["branches"]) == {"appearance", "shape", "gait"}
    assert sum(b["mean_weight"] for b in full["branches"].values()) == pytest.approx(1.0)
    for branch in full["branches"].values():
        assert set(branch["settings"]) == set(full["settings"])
    config = tiny_config(synthetic_root, skeleton_cache, tmp_path, run="shape")
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, use_appearance=False, use_gait=False)
    )
    metrics = train_stage.run(config, log=quiet, progress=False)
    assert list(metrics["branches"]) == ["shape"]
    assert metrics["branches"]["shape"]["mean_weight"] == 1.0
    for setting, fused in metrics["settings"].items():
        alone = metrics["branches"]["shape"]["settings"][setting]
        assert alone["R-1"] == pytest.approx(fused["R-1"]) and alone["mAP"] == pytest.approx(
            fused["mAP"]
        )


def test_fusion_calibration_is_stored_in_the_scored_checkpoint_and_served(
    synthetic_root, skeleton_cache, tmp_path, monkeypatch
):
    # As above, the tiny set's query identities stand in for the validation identities.
    config = tiny_config(
        synthetic_root, skeleton_cache, tmp_path, run="calibrated", fusion_calibration="val"
    )

    def splits_with_validation(config, needs_joints, log):
        plain = dataclasses.replace(config.train, fusion_calibration="off")
        splits = load_splits(dataclasses.replace(config, train=plain), needs_joints, log=log)
        splits.val = splits.query
        return splits

    monkeypatch.setattr(train_stage, "_load_training_splits", splits_with_validation)
    messages = []
    metrics = train_stage.run(config, log=messages.append, progress=False)
    record = metrics["selection"]["fusion_calibration"]
    assert set(record["scales"]) == {"appearance", "shape", "gait"}
    assert max(record["scales"].values()) == 1.0 and record["candidates"] == 37
    assert record["val_map"] >= record["val_map_learned"]
    assert any("fusion calibrated on" in m for m in messages)
    state = torch.load(tmp_path / "calibrated" / "checkpoints" / "last.pt", weights_only=True)
    scales = torch.tensor(list(record["scales"].values()))
    torch.testing.assert_close(state["model"]["fusion.branch_prior"], scales.log())
    # The run folder serves the calibrated model: it re-extracts the evaluated features.
    trained = RunFolder(tmp_path / "calibrated").load_model()
    splits = load_splits(config, needs_joints=True, splits=("query", "gallery"), log=quiet)
    again = extract_features(trained.model, splits.query, config, torch.device("cpu"))
    features = np.load(tmp_path / "calibrated" / "features.npz", allow_pickle=False)
    np.testing.assert_allclose(again, features["query_features"], atol=1e-5)


def test_an_unknown_calibration_rule_is_refused(synthetic_root, skeleton_cache, tmp_path):
    config = tiny_config(synthetic_root, skeleton_cache, tmp_path, fusion_calibration="test")
    with pytest.raises(StageError, match="train.fusion_calibration must be one of off, val"):
        train_stage.run(config, log=quiet, progress=False)
    assert not (tmp_path / "asgl").exists()

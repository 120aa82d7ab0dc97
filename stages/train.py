"""`asgl-pipeline train`: train ASGL on cached skeletons plus frames (paper §4.2), then evaluate.

Outputs in `<paths.runs_dir>/<train.run>/`: `config.toml`, `train_log.csv`,
`checkpoints/last.pt` (every epoch, atomic; `best.pt` too when selecting on a validation split),
then `metrics.json` and `features.npz` from the evaluation. `--resume` continues from `last.pt`
and ends with the weights an uninterrupted run would have. Under
`torchrun --nproc-per-node N -m stages.cli train …` it trains with DistributedDataParallel.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

import torch

from pipeline.calibration import CALIBRATION_RULES, calibrate_fusion
from pipeline.data.frames import attach_frame_cache
from pipeline.data.splits import load_splits
from pipeline.evaluation import evaluate_model
from pipeline.models import check_backbone_weights
from pipeline.runs import RunFolder
from pipeline.runtime import Distributed
from pipeline.training import fit
from stages import StageError

SELECT_RULES = ("last", "val")


def _check(config) -> None:
    train = config.train
    problems = []
    if train.epochs < 1:
        problems.append(f"train.epochs must be ≥ 1 (got {train.epochs})")
    if train.select not in SELECT_RULES:
        problems.append(
            f"train.select must be one of {', '.join(SELECT_RULES)} (got '{train.select}')"
        )
    if train.fusion_calibration not in CALIBRATION_RULES:
        problems.append(
            f"train.fusion_calibration must be one of {', '.join(CALIBRATION_RULES)} "
            f"(got '{train.fusion_calibration}')"
        )
    if train.seq_len < 1 or config.eval.seq_len < 1:
        problems.append("train.seq_len and eval.seq_len must be ≥ 1")
    if train.ids_per_batch < 2 or train.clips_per_id < 2:
        problems.append(
            "train.ids_per_batch and train.clips_per_id must be ≥ 2 (the triplet loss needs "
            "positives and negatives in every batch)"
        )
    if not config.model.has_branch:
        problems.append("all three branches are off — keep at least one")
    if not config.train.run or config.train.run in (".", ".."):
        problems.append(f"--run must name a run folder (got '{config.train.run}')")
    if problems:
        raise StageError("; ".join(problems) + " — nothing was trained")
    try:  # before the run folder exists, so a bad file leaves nothing behind
        check_backbone_weights(config.model)
    except ValueError as error:
        raise StageError(
            f"--backbone-weights: {error} — pass a torchvision ResNet-"
            f"{config.model.backbone_depth} ImageNet state_dict file; nothing was trained"
        ) from None


def _init_distributed(dist):
    if not dist.enabled:
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    torch.distributed.init_process_group(backend=backend)


def _check_folder(config, run: RunFolder) -> None:
    if run.is_trained() and not config.train.resume:
        raise StageError(
            f"run folder {run.path} already holds a trained checkpoint — pass --resume to continue "
            "it (a finished run is then only re-evaluated), choose another --run, or delete the "
            "folder to start over"
        )
    if config.train.resume and not run.is_trained():
        raise StageError(
            f"--resume: {run.last_checkpoint} does not exist, so there is nothing to resume — drop "
            "--resume to start the run"
        )


def run(config, log: Callable[[str], None] = print, progress: bool = True) -> dict:
    """Train, checkpoint every epoch, evaluate; returns the metrics dict (rank 0; {} elsewhere)."""
    _check(config)
    dist = Distributed.from_env()
    say = log if dist.is_main else (lambda _message: None)
    folder = RunFolder.resolve(config.train.run, config.paths.runs_dir)
    # One writer per run folder; under torchrun only rank 0 writes, so only it holds the lock.
    with folder.lock("train") if dist.is_main else contextlib.nullcontext():
        _check_folder(config, folder)
        return _train(config, folder, dist, say, progress)


def _train(config, folder: RunFolder, dist: Distributed, say, progress: bool) -> dict:
    _init_distributed(dist)
    try:
        needs_joints = config.model.uses_skeleton
        splits = attach_frame_cache(config, _load_training_splits(config, needs_joints, say), say)
        if dist.is_main:
            folder.write_config(
                dataclasses.replace(config, train=dataclasses.replace(config.train, resume=False))
            )
        say(
            f"train: {config.train.run} — {len(splits.train)} tracklets of "
            f"{len(splits.class_pids)} identities"
            + (f" ({len(splits.val_pids)} more held out for validation)" if splits.val_pids else "")
            + f", {config.train.epochs} epochs, world size {dist.world_size}"
        )
        result = fit(config, splits, folder.path, dist, say, progress)
        if not dist.is_main:
            return {}
        # Scored as `evaluate` scores it: the selected checkpoint, reloaded from the run folder.
        trained = folder.load_model(result.device)
        if config.train.fusion_calibration == "val" and len(trained.model.branch_names) > 1:
            calibration = calibrate_fusion(trained.model, splits.val, config, result.device)
            folder.store_calibration(calibration.prior, calibration.record())
            say(
                f"train: fusion calibrated on {calibration.val_ids} validation identities: "
                + ", ".join(f"{k} ×{g:g}" for k, g in calibration.scales.items())
                + f" (val mAP {calibration.learned_score:.2f} learned → {calibration.score:.2f})"
            )
            trained = folder.load_model(result.device)
        if config.train.select == "val":
            say(
                f"train: evaluating epoch {trained.selection['epoch']} (best validation mAP "
                f"{trained.selection['val_map']:.2f})"
            )
        return evaluate_model(
            config,
            trained.model,
            splits,
            folder,
            result.device,
            result.epochs,
            trained.selection,
            say,
        )
    finally:
        if dist.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _load_training_splits(config, needs_joints: bool, log):
    splits = load_splits(config, needs_joints, log=log)
    if len(splits.class_pids) < config.train.ids_per_batch:
        raise StageError(
            f"the training split has {len(splits.class_pids)} identities, fewer than "
            f"train.ids_per_batch = {config.train.ids_per_batch} — lower it with --set "
            "train.ids_per_batch=N"
        )
    return splits

"""The training loop (paper §4.2): Adam + StepLR, P×K identity batches, 0.7·CE + 0.3·triplet.

`fit()` reads top to bottom: set up (device, seeds, model, optimiser, data), restore a checkpoint
when resuming, then for each epoch train, log, validate (when selecting on a validation split)
and checkpoint. Everything a resumed run needs to continue bit-for-bit is in the checkpoint:
model, optimiser, scheduler, AMP scaler, Python/NumPy/torch RNG states, sampler state and epoch.
Checkpoints hold only tensors and plain Python values, so `torch.load(weights_only=True)` reads
them. Under `torchrun` (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel (NCCL on
GPUs, gloo on CPU) and each process draws its share of the same identity batches.
"""

from __future__ import annotations

import csv
import io
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline.cache import pose_x_channels
from pipeline.config import Config, config_to_dict, parse_config, to_toml
from pipeline.data import DistributedIdentitySampler, IdentitySampler, TrainClips
from pipeline.data.dataset import ClipSource
from pipeline.data.splits import DataSplits
from pipeline.errors import StageError
from pipeline.evaluation import extract_features, model_inputs, source_labels
from pipeline.io import atomic_write_text
from pipeline.losses import ClothesAdversary, ReIDLoss
from pipeline.metrics import validation_map
from pipeline.models import build_model
from pipeline.models.batchnorm import recalibrate
from pipeline.runs import RunFolder, load_checkpoint, save_checkpoint
from pipeline.runtime import (
    Distributed,
    resolve_device,
    restore_rng_state,
    rng_state,
    seed_everything,
    seed_worker,
)
from pipeline.skeleton import joint_statistics

LOG_COLUMNS = ("epoch", "loss", "ce", "triplet", "acc", "lr", "clips_per_s", "seconds")
# Settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {
    "data": {"frame_cache", "frame_cache_gb"},  # the same pixels either way
    "train": {"epochs", "resume", "device", "num_workers"},
    "eval": None,
}


# --------------------------------------------------------------------------- resuming


def config_from_checkpoint(state: dict) -> Config:
    """The resolved configuration a checkpoint was trained with (stored as TOML text)."""
    return parse_config(tomllib.loads(state["config"]), "checkpoint configuration")


def config_differences(saved: Config, current: Config) -> list[str]:
    """Settings that differ between a checkpoint's configuration and the current one, leaving
    out those a resumed run may change (more epochs, another device, …)."""
    old, new = config_to_dict(saved), config_to_dict(current)
    changes = []
    for section in ("data", "model", "train", "eval"):
        allowed = RESUMABLE_CHANGES.get(section, set())
        if allowed is None:
            continue
        for key, value in new[section].items():
            if key not in allowed and old[section].get(key) != value:
                changes.append(f"{section}.{key}: {old[section].get(key)!r} → {value!r}")
    return changes


def build_training_model(config: Config, splits: DataSplits):
    """The model for `splits.train`, its joint standardisation fixed from the training joints
    (see pipeline/models/refine.py; a resumed run loads the same values from its checkpoint)."""
    size = (config.train.height, config.train.width)
    model = build_model(config.model, num_classes=len(splits.class_pids), frame_size=size)
    if model.refine is not None:
        model.refine.set_input_statistics(*joint_statistics([s.joints for s in splits.train]))
    return model


def recalibrate_statistics(model, loader, device: torch.device, amp: bool) -> int:
    """After the last epoch: BatchNorm statistics recomputed on the final weights over one more
    pass of that epoch's batches (pipeline/models/batchnorm.py `recalibrate`), so eval mode
    normalises as training did. Part of the last epoch, so a resumed run ends identically."""

    def forward(batch):
        frames, joints = model_inputs(model, batch[0], batch[1], device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            model(frames, joints)

    return recalibrate(model, loader, forward)


# --------------------------------------------------------------------------- one step


class NonFiniteLoss(Exception):
    def __init__(self, value: float):
        super().__init__(f"loss is {value}")
        self.value = value


@dataclass
class StepResult:
    loss: float
    ce: float
    triplet: float
    correct: int
    clips: int


def average_gradients(module: torch.nn.Module) -> None:
    """Average the gradients of a module DDP does not wrap over the processes (no-op alone)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    for parameter in module.parameters():
        if parameter.grad is not None:
            torch.distributed.all_reduce(parameter.grad)
            parameter.grad /= world


def clothes_adversary(config: Config, splits: DataSplits) -> ClothesAdversary | None:
    """CAL's clothes classifier over the training outfits (`train.clothes_loss` > 0), or None."""
    if config.train.clothes_loss <= 0:
        return None
    outfits = sorted({(s.clothes_index, s.pid_index) for s in splits.train})
    lookup = [-1] * (max(index for index, _ in outfits) + 1)
    for position, (index, _) in enumerate(outfits):
        lookup[index] = position
    return ClothesAdversary(config.model.fusion_dim, [pid for _, pid in outfits], lookup)


def train_step(
    model, batch, optimizer, loss_fn: ReIDLoss, scaler, device: torch.device, amp: bool
) -> StepResult:
    """Forward, loss, backward and optimiser step on one (frames, joints, labels, …) batch.
    Raises NonFiniteLoss on a NaN/inf loss (on any process) before the weights are touched."""
    frames, joints, labels, clothes = batch[0], batch[1], batch[2], batch[4]
    core = model.module if hasattr(model, "module") else model
    frames, joints = model_inputs(core, frames, joints, device)
    labels = labels.to(device, non_blocking=True)
    clothes = clothes.to(device, non_blocking=True)
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        output = model(frames, joints)
    parts = loss_fn(output.embedding, output.logits, labels, output.projected, clothes)
    finite = torch.isfinite(parts.total.detach()).float()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
    if finite.item() < 1:
        raise NonFiniteLoss(float(parts.total.detach()))
    scaler.scale(parts.total).backward()
    average_gradients(loss_fn)  # the loss's own parameters are outside DistributedDataParallel
    scaler.step(optimizer)
    scaler.update()
    correct = int((output.logits.detach().argmax(dim=1) == labels).sum())
    return StepResult(
        float(parts.total.detach()),
        float(parts.cross_entropy.detach()),
        float(parts.triplet.detach()),
        correct,
        len(labels),
    )


def validation_score(model, sources: list[ClipSource], config: Config, device) -> float:
    """mAP (%) on the validation identities, every tracklet a query against all the others:
    cloth-changing when any query has a cloth-changing match, else standard."""
    features = extract_features(model, sources, config, device)
    return validation_map(features, source_labels(sources), config.eval.chunk_size)


# --------------------------------------------------------------------------- the loop


@dataclass
class FitResult:
    model: torch.nn.Module  # unwrapped, on its device, with the last epoch's weights
    epochs: int  # epochs completed
    best_epoch: int | None  # select = "val": the epoch whose weights best.pt holds
    best_score: float | None
    log_rows: list[dict] = field(default_factory=list)
    device: torch.device = torch.device("cpu")


def read_log(path: Path, up_to_epoch: int) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if int(row["epoch"]) <= up_to_epoch]


def write_log(path: Path, rows: list[dict]) -> None:
    columns = list(LOG_COLUMNS) + [k for k in (rows[0] if rows else {}) if k not in LOG_COLUMNS]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def make_loader(config: Config, splits: DataSplits, needs_frames: bool, dist: Distributed):
    train = config.train
    dataset = TrainClips(
        splits.train,
        train.seq_len,
        train.sample_stride,
        train.height,
        train.width,
        train.flip,
        load_frames=needs_frames,
        sampling_step=train.sampling_step,
        x_channels=pose_x_channels(config.model.pose),
    )
    pids = dataset.item_pids
    if dist.enabled:
        sampler = DistributedIdentitySampler(
            pids, train.ids_per_batch, train.clips_per_id, dist.world_size, dist.rank, train.seed
        )
    else:
        sampler = IdentitySampler(pids, train.ids_per_batch, train.clips_per_id, train.seed)
    loader = DataLoader(
        dataset,
        batch_size=sampler.batch_size,
        sampler=sampler,
        num_workers=train.num_workers,
        worker_init_fn=seed_worker,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )
    return sampler, loader


@dataclass
class Parts:
    """What one training process works with (built identically for a fresh and a resumed run)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loss_fn: ReIDLoss
    sampler: IdentitySampler
    loader: DataLoader


def build_parts(
    config: Config, splits: DataSplits, device: torch.device, amp: bool, dist: Distributed
) -> Parts:
    """Model, Adam + StepLR, AMP scaler, loss and identity-batch loader (call after seeding)."""
    train = config.train
    model = build_training_model(config, splits).to(device)
    loss_fn = ReIDLoss.from_config(train, clothes_adversary(config, splits)).to(device)
    parameters = [*model.parameters(), *loss_fn.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=train.lr, weight_decay=train.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=train.lr_step, gamma=train.lr_gamma
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    sampler, loader = make_loader(config, splits, model.needs_frames, dist)
    return Parts(model, optimizer, scheduler, scaler, loss_fn, sampler, loader)


@dataclass
class Progress:
    """Where a run stands between epochs: what a resumed run picks up."""

    start_epoch: int = 0  # epochs completed before this process started
    best_epoch: int | None = None
    best_score: float | None = None
    rows: list[dict] = field(default_factory=list)  # train_log.csv so far


def resume(parts: Parts, run: RunFolder, config: Config, log: Callable[[str], None]) -> Progress:
    """Restore model, optimiser, scheduler, scaler, sampler and RNG states from last.pt."""
    state = load_checkpoint(run.last_checkpoint)
    changes = config_differences(config_from_checkpoint(state), config)
    if changes:
        raise StageError(
            f"cannot resume {run.path}: its checkpoint was trained with other settings "
            f"({'; '.join(changes)}) — resume with the same settings, or train another `train.run`"
        )
    # A fusion calibration belongs to a finished run (pipeline/calibration.py): training resumes
    # with the learned fusion alone, and a run that finishes again is calibrated again.
    prior = torch.zeros_like(parts.model.fusion.branch_prior)
    parts.model.load_state_dict({**state["model"], "fusion.branch_prior": prior})
    parts.loss_fn.load_state_dict(state.get("loss", {}))
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    if state["scaler"]:  # empty when saved without AMP (e.g. a CPU run resumed on a GPU)
        parts.scaler.load_state_dict(state["scaler"])
    parts.sampler.load_state_dict(state["sampler"])
    restore_rng_state(state["rng"])
    start = int(state["epoch"])
    rows = state["log"] if "log" in state else read_log(run.train_log, start)
    log(f"train: resuming {run.name} after epoch {start} of {config.train.epochs}")
    return Progress(start, state.get("best_epoch"), state.get("best_score"), rows)


def last_checkpoint_state(
    parts: Parts, progress: Progress, epoch: int, splits: DataSplits, config: Config
) -> dict:
    """last.pt: everything a resumed run needs to continue bit for bit (tensors and plain
    values only, so `torch.load(weights_only=True)` reads it)."""
    return {
        "model": parts.model.state_dict(),
        "loss": parts.loss_fn.state_dict(),  # the clothes prototypes, when the adversary is on
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "sampler": parts.sampler.state_dict(),
        "rng": rng_state(),
        "epoch": epoch,
        "best_epoch": progress.best_epoch,
        "best_score": None if progress.best_score is None else float(progress.best_score),
        "num_classes": len(splits.class_pids),
        "class_pids": list(splits.class_pids),
        "val_pids": list(splits.val_pids),
        "config": to_toml(config),
        "log": progress.rows,  # train_log.csv up to this epoch, for a resume
    }


@dataclass
class RunningStats:
    """An epoch's running sums, for the progress bar and its train_log.csv row."""

    loss: float = 0.0
    ce: float = 0.0
    triplet: float = 0.0
    correct: int = 0
    clips: int = 0
    steps: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, step: StepResult) -> None:
        self.loss += step.loss
        self.ce += step.ce
        self.triplet += step.triplet
        self.correct += step.correct
        self.clips += step.clips
        self.steps += 1

    def postfix(self) -> dict[str, str]:
        elapsed = time.perf_counter() - self.started
        return {
            "loss": f"{self.loss / self.steps:.3f}",
            "acc": f"{self.correct / max(1, self.clips):.2f}",
            "clips_s": f"{self.clips / max(elapsed, 1e-9):.1f}",
        }

    def row(self, epoch: int, lr: float, world_size: int) -> dict:
        seconds = time.perf_counter() - self.started
        steps = max(1, self.steps)
        return {
            "epoch": epoch,
            "loss": round(self.loss / steps, 6),
            "ce": round(self.ce / steps, 6),
            "triplet": round(self.triplet / steps, 6),
            "acc": round(self.correct / max(1, self.clips), 6),
            "lr": lr,
            "clips_per_s": round(self.clips * world_size / max(seconds, 1e-9), 3),
            "seconds": round(seconds, 3),
        }


def train_epoch(
    wrapped,
    parts: Parts,
    epoch: int,
    run: RunFolder,
    device: torch.device,
    amp: bool,
    bar: bool,
    epochs: int,
) -> RunningStats:
    """One pass over the epoch's identity batches; a NaN/inf loss stops the run cleanly."""
    wrapped.train()
    parts.loss_fn.set_epoch(epoch)
    lr = parts.optimizer.param_groups[0]["lr"]
    stats = RunningStats()
    batches = tqdm(
        parts.loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=not bar, unit="batch"
    )
    for batch in batches:
        try:
            step = train_step(
                wrapped, batch, parts.optimizer, parts.loss_fn, parts.scaler, device, amp
            )
        except NonFiniteLoss as error:
            kept = (
                f"the last good checkpoint {run.last_checkpoint} is intact"
                if run.is_trained()
                else "no checkpoint was written"
            )
            raise StageError(
                f"training diverged: {error} at epoch {epoch + 1}, step {stats.steps + 1} "
                f"— {kept}; lower `train.lr` (now {lr:g}) or check the inputs, then resume "
                "(`train.resume`)"
            ) from None
        stats.add(step)
        batches.set_postfix(**stats.postfix())
    batches.close()
    return stats


def end_epoch(
    parts: Parts,
    progress: Progress,
    row: dict,
    config: Config,
    splits: DataSplits,
    run: RunFolder,
    device: torch.device,
    log: Callable[[str], None],
) -> None:
    """Main process: validate (select = "val", keeping best.pt), log, and checkpoint last.pt."""
    epoch = row["epoch"]
    if config.train.select == "val":
        score = validation_score(parts.model, splits.val, config, device)
        row["val_map"] = round(score, 4)
        if progress.best_score is None or score > progress.best_score:
            progress.best_epoch, progress.best_score = epoch, score
            save_checkpoint(
                run.best_checkpoint,
                {
                    "model": parts.model.state_dict(),
                    "epoch": epoch,
                    "score": float(score),
                    "config": to_toml(config),
                },
            )
    progress.rows.append(row)
    # Checkpoint first, log second: the log never lists an epoch whose checkpoint was not
    # written (a full disk did that), and a resume takes the rows from the checkpoint.
    save_checkpoint(
        run.last_checkpoint, last_checkpoint_state(parts, progress, epoch, splits, config)
    )
    write_log(run.train_log, progress.rows)
    log(
        f"epoch {epoch}/{config.train.epochs}: loss {row['loss']:.4f} (ce {row['ce']:.4f}, "
        f"triplet {row['triplet']:.4f}), acc {row['acc']:.3f}, lr {row['lr']:.2e}, "
        f"{row['clips_per_s']:.1f} clips/s, {row['seconds']:.1f} s"
        + (f", val mAP {row['val_map']:.2f}" if "val_map" in row else "")
    )


def fit(
    config: Config,
    splits: DataSplits,
    run_dir: Path,
    dist: Distributed = Distributed(),
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> FitResult:
    train, run = config.train, RunFolder(run_dir)
    device = resolve_device(train.device, dist)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    amp = train.amp and device.type == "cuda"
    seed_everything(train.seed)
    parts = build_parts(config, splits, device, amp, dist)
    state = resume(parts, run, config, log) if train.resume else Progress()
    wrapped = parts.model
    if dist.enabled:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            parts.model, device_ids=[device.index] if device.type == "cuda" else None
        )

    for epoch in range(state.start_epoch, train.epochs):
        parts.sampler.set_epoch(epoch)
        lr = parts.optimizer.param_groups[0]["lr"]
        stats = train_epoch(
            wrapped, parts, epoch, run, device, amp, progress and dist.is_main, train.epochs
        )
        if epoch + 1 == train.epochs:
            recalibrate_statistics(parts.model, parts.loader, device, amp)
        parts.scheduler.step()
        row = stats.row(epoch + 1, lr, dist.world_size)
        if dist.is_main:
            end_epoch(parts, state, row, config, splits, run, device, log)
        if dist.enabled:
            torch.distributed.barrier()

    epochs = max(state.start_epoch, train.epochs)
    return FitResult(parts.model, epochs, state.best_epoch, state.best_score, state.rows, device)


# --------------------------------------------------------------------------- bench helper


def time_training_steps(
    config: Config, splits: DataSplits, steps: int = 3, warmup: int = 1, cached=None
) -> dict[str, float]:
    """Seconds per training step, measured round-robin on the same model: on one batch held in
    memory (compute only), through the real DataLoader decoding every frame from its file
    (decoding, resizing, joints, collate), and, given `cached` (the same splits with the frame
    cache attached), through a DataLoader reading the frame cache. The ratios show what the
    input pipeline costs, with and without the cache."""
    train = config.train
    device = resolve_device(train.device)
    amp = train.amp and device.type == "cuda"
    seed_everything(train.seed)
    parts = build_parts(config, splits, device, amp, Distributed())
    parts.model.train()
    feeds = {"in_memory": None, "dataloader": _endless(parts.sampler, parts.loader)}
    if cached is not None:
        sampler, loader = make_loader(config, cached, parts.model.needs_frames, Distributed())
        feeds["frame_cache"] = _endless(sampler, loader)
    held = next(feeds["dataloader"])

    def step(feed) -> float:
        batch = held if feed is None else next(feed)  # fetching the batch is part of the step
        train_step(parts.model, batch, parts.optimizer, parts.loss_fn, parts.scaler, device, amp)
        if device.type == "cuda":
            torch.cuda.synchronize()

    seconds = {name: 0.0 for name in feeds}
    for repeat in range(warmup + steps):
        for name, feed in feeds.items():
            started = time.perf_counter()
            step(feed)
            if repeat >= warmup:
                seconds[name] += time.perf_counter() - started
    result = {f"{name}_s_per_step": total / steps for name, total in seconds.items()}
    return {**result, "clips_per_step": float(parts.sampler.batch_size)}


def _endless(sampler, loader):
    """The loader's batches, epoch after epoch."""
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1

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
import os
import random
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline.config import Config, apply_overrides, config_to_dict, eval_stride, to_toml
from pipeline.data import DistributedIdentitySampler, EvalClips, IdentitySampler, TrainClips
from pipeline.data.dataset import ClipSource
from pipeline.data.splits import DataSplits
from pipeline.errors import StageError
from pipeline.io import atomic_write, atomic_write_text
from pipeline.losses import ReIDLoss
from pipeline.metrics import Labels, evaluate
from pipeline.models import build_model

LOG_COLUMNS = ("epoch", "loss", "ce", "triplet", "acc", "lr", "clips_per_s", "seconds")
# Settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"train": {"epochs", "resume", "device", "num_workers"}, "eval": None}


# --------------------------------------------------------------------------- environment


@dataclass(frozen=True)
class Distributed:
    """This process's place in a `torchrun` job (world_size 1 when run directly)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Distributed:
        return cls(
            int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("RANK", "0")),
            int(os.environ.get("LOCAL_RANK", "0")),
        )


def resolve_device(requested: str, dist: Distributed = Distributed()) -> torch.device:
    """`auto` → CUDA when present (this process's GPU under torchrun), else CPU."""
    requested = (requested or "auto").strip()
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise StageError(
                f"device '{requested}' asked for, but CUDA is not available — use --device cpu"
            )
        if requested == "cuda":
            requested = f"cuda:{dist.local_rank}"
    elif requested != "cpu":
        raise StageError(f"unknown device '{requested}' — use auto, cpu, cuda or cuda:N")
    return torch.device(requested)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: derive Python/NumPy seeds from the worker's torch seed."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict:
    """All global RNG states as tensors and plain values (loadable with weights_only=True)."""
    version, mt_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(mt_state), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict) -> None:
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(mt_state), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write a checkpoint atomically: a crash leaves the previous file intact."""
    return atomic_write(Path(path), lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise StageError(f"no checkpoint at {path} — train the run first (`asgl-pipeline train`)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same user error
        raise StageError(
            f"checkpoint {path} cannot be read ({error}) — delete it and re-train"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise StageError(f"{path} is not a checkpoint written by `asgl-pipeline train`")
    return state


def config_from_checkpoint(state: dict) -> Config:
    """The resolved configuration a checkpoint was trained with (stored as TOML text)."""
    data = tomllib.loads(state["config"])
    profile = data.pop("profile", "paper")
    return apply_overrides(Config(profile=profile), data, "checkpoint configuration")


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


def model_inputs(model, frames: torch.Tensor, joints: torch.Tensor, device: torch.device):
    """(frames, joints) on `device`, None for a branch the model does not have."""
    frames = frames.to(device, non_blocking=True) if model.needs_frames else None
    joints = joints.to(device, non_blocking=True) if model.needs_joints else None
    return frames, joints


def train_step(
    model, batch, optimizer, loss_fn: ReIDLoss, scaler, device: torch.device, amp: bool
) -> StepResult:
    """Forward, loss, backward and optimiser step on one (frames, joints, labels, …) batch.
    Raises NonFiniteLoss on a NaN/inf loss (on any process) before the weights are touched."""
    frames, joints, labels = batch[0], batch[1], batch[2]
    core = model.module if hasattr(model, "module") else model
    frames, joints = model_inputs(core, frames, joints, device)
    labels = labels.to(device, non_blocking=True)
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        output = model(frames, joints)
    parts = loss_fn(output.embedding, output.logits, labels)
    finite = torch.isfinite(parts.total.detach()).float()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
    if finite.item() < 1:
        raise NonFiniteLoss(float(parts.total.detach()))
    scaler.scale(parts.total).backward()
    scaler.step(optimizer)
    scaler.update()
    correct = int((output.logits.detach().argmax(dim=1) == labels).sum())
    return StepResult(
        float(parts.total.detach()), float(parts.cross_entropy.detach()),
        float(parts.triplet.detach()), correct, len(labels),
    )  # fmt: skip


# --------------------------------------------------------------------------- features


@torch.no_grad()
def extract_features(
    model,
    sources: list[ClipSource],
    seq_len: int,
    stride: int,
    batch_size: int,
    height: int,
    width: int,
    device: torch.device,
    num_workers: int = 0,
    amp: bool = False,
) -> np.ndarray:
    """(N, D) L2-normalised features: each tracklet's test clips by CAL's rule (SPEC §7,
    `test_clip_indices`) embedded and averaged."""
    core = model.module if hasattr(model, "module") else model
    was_training = core.training
    core.eval()
    dataset = EvalClips(sources, seq_len, stride, height, width, load_frames=core.needs_frames)
    loader = DataLoader(
        dataset, batch_size=max(1, batch_size), shuffle=False, num_workers=num_workers,
        worker_init_fn=seed_worker, pin_memory=device.type == "cuda",
    )  # fmt: skip
    sums = torch.zeros(len(sources), core.embedding_dim, dtype=torch.float64)
    counts = torch.zeros(len(sources), dtype=torch.float64)
    for frames, joints, index in loader:
        frames, joints = model_inputs(core, frames, joints, device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            embedding = core(frames, joints).embedding
        sums.index_add_(0, index, embedding.float().cpu().double())
        counts.index_add_(0, index, torch.ones(len(index), dtype=torch.float64))
    core.train(was_training)
    features = (sums / counts.clamp(min=1)[:, None]).float()
    return torch.nn.functional.normalize(features, dim=1).numpy()


def validation_score(model, sources: list[ClipSource], config: Config, device) -> float:
    """mAP (%) on the validation identities, every tracklet a query against all the others:
    cloth-changing when any query has a cloth-changing match, else standard."""
    features = extract_features(
        model, sources, config.eval.seq_len, eval_stride(config), config.eval.batch_size,
        config.train.height, config.train.width, device,
        amp=device.type == "cuda" and config.train.amp,
    )  # fmt: skip
    labels = Labels(
        np.array([s.tracklet.pid for s in sources]),
        np.array([s.camera for s in sources]),
        np.array([s.tracklet.clothes for s in sources]),
    )
    results = evaluate(features, features, labels, labels, chunk_size=config.eval.chunk_size)
    chosen = results["cc"] if results["cc"].queries else results["standard"]
    return 100.0 * chosen.mAP


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
        splits.train, train.seq_len, train.sample_stride, train.height, train.width, train.flip,
        load_frames=needs_frames, sampling_step=train.sampling_step,
    )  # fmt: skip
    pids = dataset.item_pids
    if dist.enabled:
        sampler = DistributedIdentitySampler(
            pids, train.ids_per_batch, train.clips_per_id, dist.world_size, dist.rank, train.seed
        )
    else:
        sampler = IdentitySampler(pids, train.ids_per_batch, train.clips_per_id, train.seed)
    loader = DataLoader(
        dataset, batch_size=sampler.batch_size, sampler=sampler, num_workers=train.num_workers,
        worker_init_fn=seed_worker, pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )  # fmt: skip
    return sampler, loader


def fit(
    config: Config,
    splits: DataSplits,
    run_dir: Path,
    dist: Distributed = Distributed(),
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> FitResult:
    train = config.train
    checkpoints = run_dir / "checkpoints"
    last_path, best_path, log_path = (
        checkpoints / "last.pt",
        checkpoints / "best.pt",
        run_dir / "train_log.csv",
    )

    # --- set up
    device = resolve_device(train.device, dist)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    amp = train.amp and device.type == "cuda"
    seed_everything(train.seed)
    model = build_model(config.model, num_classes=len(splits.class_pids)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=train.lr_step, gamma=train.lr_gamma
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    loss_fn = ReIDLoss.from_config(train)
    sampler, loader = make_loader(config, splits, model.needs_frames, dist)

    # --- resume
    start_epoch, best_epoch, best_score, rows = 0, None, None, []
    if train.resume:
        state = load_checkpoint(last_path)
        changes = config_differences(config_from_checkpoint(state), config)
        if changes:
            raise StageError(
                f"cannot resume {run_dir}: its checkpoint was trained with other settings "
                f"({'; '.join(changes)}) — resume with the same settings, or train a new --run"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:  # empty when saved without AMP (e.g. a CPU run resumed on a GPU)
            scaler.load_state_dict(state["scaler"])
        sampler.load_state_dict(state["sampler"])
        restore_rng_state(state["rng"])
        start_epoch = int(state["epoch"])
        best_epoch, best_score = state.get("best_epoch"), state.get("best_score")
        rows = read_log(log_path, start_epoch)
        log(f"train: resuming {run_dir.name} after epoch {start_epoch} of {train.epochs}")

    wrapped = model
    if dist.enabled:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    # --- epochs
    for epoch in range(start_epoch, train.epochs):
        sampler.set_epoch(epoch)
        wrapped.train()
        lr = optimizer.param_groups[0]["lr"]
        totals = {"loss": 0.0, "ce": 0.0, "triplet": 0.0, "correct": 0, "clips": 0, "steps": 0}
        started = time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{train.epochs}", leave=False,
                   disable=not (progress and dist.is_main), unit="batch")  # fmt: skip
        for batch in bar:
            try:
                step = train_step(wrapped, batch, optimizer, loss_fn, scaler, device, amp)
            except NonFiniteLoss as error:
                kept = (
                    f"the last good checkpoint {last_path} is intact"
                    if last_path.is_file()
                    else "no checkpoint was written"
                )
                raise StageError(
                    f"training diverged: {error} at epoch {epoch + 1}, step {totals['steps'] + 1} "
                    f"— {kept}; lower train.lr (now {lr:g}) or check the inputs, then resume with "
                    "--resume"
                ) from None
            for key in ("loss", "ce", "triplet"):
                totals[key] += getattr(step, key)
            totals["correct"] += step.correct
            totals["clips"] += step.clips
            totals["steps"] += 1
            elapsed = time.perf_counter() - started
            bar.set_postfix(
                loss=f"{totals['loss'] / totals['steps']:.3f}",
                acc=f"{totals['correct'] / max(1, totals['clips']):.2f}",
                clips_s=f"{totals['clips'] / max(elapsed, 1e-9):.1f}",
            )
        bar.close()
        scheduler.step()
        seconds = time.perf_counter() - started
        steps = max(1, totals["steps"])
        row = {
            "epoch": epoch + 1,
            "loss": round(totals["loss"] / steps, 6),
            "ce": round(totals["ce"] / steps, 6),
            "triplet": round(totals["triplet"] / steps, 6),
            "acc": round(totals["correct"] / max(1, totals["clips"]), 6),
            "lr": lr,
            "clips_per_s": round(totals["clips"] * dist.world_size / max(seconds, 1e-9), 3),
            "seconds": round(seconds, 3),
        }

        if dist.is_main:
            if train.select == "val":
                score = validation_score(model, splits.val, config, device)
                row["val_map"] = round(score, 4)
                if best_score is None or score > best_score:
                    best_epoch, best_score = epoch + 1, score
                    save_checkpoint(best_path, {"model": model.state_dict(), "epoch": epoch + 1,
                                                "score": float(score), "config": to_toml(config)})  # fmt: skip
            rows.append(row)
            write_log(log_path, rows)
            save_checkpoint(
                last_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "sampler": sampler.state_dict(),
                    "rng": rng_state(),
                    "epoch": epoch + 1,
                    "best_epoch": best_epoch,
                    "best_score": None if best_score is None else float(best_score),
                    "num_classes": len(splits.class_pids),
                    "class_pids": list(splits.class_pids),
                    "val_pids": list(splits.val_pids),
                    "config": to_toml(config),
                },
            )
            log(
                f"epoch {epoch + 1}/{train.epochs}: loss {row['loss']:.4f} (ce {row['ce']:.4f}, "
                f"triplet {row['triplet']:.4f}), acc {row['acc']:.3f}, lr {lr:.2e}, "
                f"{row['clips_per_s']:.1f} clips/s, {seconds:.1f} s"
                + (f", val mAP {row['val_map']:.2f}" if "val_map" in row else "")
            )
        if dist.enabled:
            torch.distributed.barrier()

    return FitResult(model, max(start_epoch, train.epochs), best_epoch, best_score, rows, device)


# --------------------------------------------------------------------------- bench helper


def time_training_steps(
    config: Config, splits: DataSplits, steps: int = 3, warmup: int = 1
) -> dict[str, float]:
    """Seconds per training step, measured back to back on the same model: on one batch held in
    memory (compute only) and through the real DataLoader (decoding, resizing, joints, collate).
    The ratio shows how much the input pipeline costs."""
    train = config.train
    device = resolve_device(train.device)
    amp = train.amp and device.type == "cuda"
    seed_everything(train.seed)
    model = build_model(config.model, num_classes=len(splits.class_pids)).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    loss_fn = ReIDLoss.from_config(train)
    sampler, loader = make_loader(config, splits, model.needs_frames, Distributed())

    def batches():
        epoch = 0
        while True:
            sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    stream = batches()
    held = next(stream)

    def timed(next_batch) -> float:
        for _ in range(warmup):
            train_step(model, next_batch(), optimizer, loss_fn, scaler, device, amp)
        started = time.perf_counter()
        for _ in range(steps):
            train_step(model, next_batch(), optimizer, loss_fn, scaler, device, amp)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - started) / steps

    in_memory = timed(lambda: held)
    with_loader = timed(lambda: next(stream))
    return {
        "in_memory_s_per_step": in_memory,
        "dataloader_s_per_step": with_loader,
        "clips_per_step": float(sampler.batch_size),
    }

"""This process's place to compute: its device, its rank in a `torchrun` job, and its random
number generators (seeded, saved into checkpoints and restored on resume)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.errors import StageError


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
                f"device '{requested}' asked for, but CUDA is not available — set `train.device` to cpu"
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

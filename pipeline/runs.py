"""A run folder (`<paths.runs_dir>/<name>/`, contract in docs/ARCHITECTURE.md): the one module
that knows its file names, which checkpoint is scored, and how to load the model it trained.

    config.toml · train_log.csv · checkpoints/last.pt (+ best.pt) · metrics.json · features.npz

`--run` means the same in every command: a plain name is a folder under `paths.runs_dir`, anything
with a path separator is that folder itself (`RunFolder.resolve`). The model fingerprint hashes
the scored checkpoint's bytes and the resolved `config.toml`: the same run re-trained, resumed or
re-configured gets another fingerprint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.config import Config, ConfigError, parse_config, parse_toml, save_config
from pipeline.errors import StageError
from pipeline.io import (
    FileLock,
    atomic_write,
    atomic_write_json,
    atomic_write_npz,
    load_tensors,
    read_npz,
    remove_stale_temporaries,
)
from pipeline.models import build_model
from pipeline.runtime import resolve_device

CONFIG_FILE = "config.toml"
TRAIN_LOG = "train_log.csv"
METRICS_FILE = "metrics.json"
FEATURES_FILE = "features.npz"
LAST_CHECKPOINT = Path("checkpoints") / "last.pt"
BEST_CHECKPOINT = Path("checkpoints") / "best.pt"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write a checkpoint atomically: a crash leaves the previous file intact."""
    return atomic_write(Path(path), lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path, data: bytes | None = None) -> dict:
    """The checkpoint at `path` (from `data`, its bytes, when the caller has read them already)."""
    path = Path(path)
    if data is None and not path.is_file():
        raise StageError(f"no checkpoint at {path} — train the run first (`asgl-pipeline train`)")
    try:
        state = load_tensors(path if data is None else io.BytesIO(data))
    except ValueError as error:
        raise StageError(
            f"checkpoint {path} cannot be used: {error} — use a checkpoint written by "
            "`asgl-pipeline train`, or delete it and re-train"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise StageError(f"{path} is not a checkpoint written by `asgl-pipeline train`")
    return state


@dataclass(frozen=True)
class ModelFingerprint:
    """Which trained model made an embedding: run, checkpoint bytes and resolved config."""

    run: str
    run_dir: str
    checkpoint_sha256: str
    config_sha256: str

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(
            f"{self.checkpoint_sha256}:{self.config_sha256}".encode()
        ).hexdigest()[:16]

    def describe(self) -> str:
        return f"run '{self.run}' ({self.run_dir}, fingerprint {self.fingerprint})"


@dataclass
class TrainedModel:
    """A run's model in eval mode (classifier dropped), with the configuration it was trained
    with and which checkpoint it came from."""

    model: Any  # pipeline.models.ASGL
    config: Config  # the run's resolved config.toml
    fingerprint: ModelFingerprint
    device: torch.device
    selection: dict  # metrics.json's record of which weights these are
    epochs: int  # epochs the run completed (last.pt's)


def _inside(relative: str | Path) -> property:
    """A file of the run folder as a read-only attribute: `folder.metrics_file` → Path."""
    return property(lambda self: self.path / relative)


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def resolve(cls, run: str | Path, runs_dir: str | Path) -> RunFolder:
        """A plain name is a folder under `runs_dir`; a value with a path separator (or an
        absolute path) is the folder itself."""
        text = str(run)
        if os.sep in text or "/" in text or Path(text).is_absolute():
            return cls(Path(text))
        return cls(Path(runs_dir) / text)

    @property
    def name(self) -> str:
        return self.path.absolute().name

    config_file = _inside(CONFIG_FILE)
    train_log = _inside(TRAIN_LOG)
    metrics_file = _inside(METRICS_FILE)
    features_file = _inside(FEATURES_FILE)
    last_checkpoint = _inside(LAST_CHECKPOINT)
    best_checkpoint = _inside(BEST_CHECKPOINT)

    @property
    def lock_file(self) -> Path:
        """Beside the folder, not in it: taking the lock creates nothing inside the run."""
        return self.path.absolute().parent / f".{self.name}.lock"

    @contextmanager
    def lock(self, stage: str) -> Iterator[RunFolder]:
        """Hold the run for one writer at a time (train, evaluate, embed, export): two trainings
        of one run both "succeeded" into a folder mixing their files. Taking it deletes the
        temporaries a killed writer left in the folder (never valid; a paper-size checkpoint's
        is hundreds of MB)."""
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.lock_file, f"asgl-pipeline {stage}")
        if not lock.acquire():
            raise StageError(
                f"run folder {self.path} is in use by another process "
                f"({lock.held_by() or 'unknown'}) — wait for it to finish, or choose another `train.run`"
            )
        try:
            for folder in (self.path, self.path / LAST_CHECKPOINT.parent):
                remove_stale_temporaries(folder)
            yield self
        finally:
            lock.release()

    def is_trained(self) -> bool:
        return self.last_checkpoint.is_file()

    def is_evaluated(self) -> bool:
        return self.metrics_file.is_file()

    # ------------------------------------------------------------------ reading a trained run

    def require_trained(self) -> None:
        """StageError naming what is missing unless the folder has a checkpoint and config."""
        if not self.path.is_dir():
            raise StageError(
                f"no trained run at {self.path} (the folder does not exist) — set `train.run` "
                "to the NAME of a folder under the runs folder (or its path), or train one with "
                "`asgl-pipeline train`"
            )
        if not self.is_trained():
            raise StageError(
                f"run folder {self.path} has no checkpoint {LAST_CHECKPOINT} — train it first "
                f"(`asgl-pipeline train`, run {self.name}) or point `train.run` at a trained run"
            )
        if not self.config_file.is_file():
            raise StageError(
                f"run folder {self.path} has no {CONFIG_FILE} (the configuration the model was "
                "trained with) — it was not written by `asgl-pipeline train`; re-train the run"
            )

    def read_config(self) -> Config:
        return self._read_config()[0]

    def _read_config(self) -> tuple[Config, str]:
        """config.toml parsed, and the sha256 of the bytes parsed, from one read."""
        try:
            data = self.config_file.read_bytes()
            text = data.decode("utf-8")
            config = parse_config(parse_toml(text, str(self.config_file)), str(self.config_file))
        except (OSError, UnicodeDecodeError, ConfigError) as error:
            raise StageError(
                f"{self.config_file} cannot be read ({error}) — re-train the run"
            ) from None
        return config, hashlib.sha256(data).hexdigest()

    def write_config(self, config: Config) -> Path:
        return save_config(config, self.config_file)

    def scored_checkpoint(self, select: str) -> Path:
        """The checkpoint evaluation scores: `best.pt` when the run selects on validation
        (`train.select = "val"`) and has one, else `last.pt`."""
        if select == "val" and self.best_checkpoint.is_file():
            return self.best_checkpoint
        return self.last_checkpoint

    def fingerprint(self) -> ModelFingerprint:
        """Which model this run serves now (StageError naming what is missing)."""
        self.require_trained()
        config, config_sha256 = self._read_config()
        checkpoint = self.scored_checkpoint(config.train.select)
        return self._fingerprint(file_sha256(checkpoint), config_sha256)

    def _fingerprint(self, checkpoint_sha256: str, config_sha256: str) -> ModelFingerprint:
        return ModelFingerprint(
            run=self.name,
            run_dir=str(self.path.absolute()),
            checkpoint_sha256=checkpoint_sha256,
            config_sha256=config_sha256,
        )

    def selection(self, select: str, scored: dict, last: dict) -> dict:
        """metrics.json's `selection`: which weights were scored (never chosen on the test set);
        `scored` and `last` are the states of the scored checkpoint and of last.pt."""
        checkpoint = self.scored_checkpoint(select)
        record = {"rule": select, "checkpoint": checkpoint.name, "epoch": int(scored["epoch"])}
        if checkpoint == self.best_checkpoint:
            record.update(val_ids=list(last.get("val_pids", [])), val_map=scored.get("score"))
        if "fusion_calibration" in scored:
            record["fusion_calibration"] = scored["fusion_calibration"]
        return record

    def store_calibration(self, prior: torch.Tensor, record: dict) -> Path:
        """Write a fusion calibration (`pipeline/calibration.py`) into the scored checkpoint, so
        evaluate, embed, search and export all serve the calibrated model (atomic rewrite)."""
        config, _ = self._read_config()
        checkpoint = self.scored_checkpoint(config.train.select)
        state = load_checkpoint(checkpoint)
        state["model"]["fusion.branch_prior"] = prior.detach().cpu().float()
        state["fusion_calibration"] = record
        return save_checkpoint(checkpoint, state)

    def load_model(self, device: str | torch.device = "cpu") -> TrainedModel:
        """The run's model built from its config.toml with the scored checkpoint's weights, in
        eval mode on `device`. The identity classifier only serves training: it is dropped."""
        # config.toml and the scored checkpoint are each read once: hashed and parsed from the
        # same bytes, so the fingerprint is that of the weights and settings actually loaded.
        self.require_trained()
        config, config_sha256 = self._read_config()
        checkpoint = self.scored_checkpoint(config.train.select)
        data = checkpoint.read_bytes()
        fingerprint = self._fingerprint(hashlib.sha256(data).hexdigest(), config_sha256)
        scored = load_checkpoint(checkpoint, data)
        last = (
            scored if checkpoint == self.last_checkpoint else load_checkpoint(self.last_checkpoint)
        )
        state = {k: v for k, v in scored["model"].items() if not k.startswith("classifier.")}
        # Runs trained before the fusion had a prior were never calibrated: the learned fusion.
        state.setdefault("fusion.branch_prior", torch.zeros(sum(config.model.branches)))
        model = build_model(
            dataclasses.replace(config.model, backbone_weights=""),
            num_classes=0,
            frame_size=(config.train.height, config.train.width),
        )
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise StageError(
                f"checkpoint {checkpoint} does not fit the model described by {self.config_file} "
                f"({str(error).splitlines()[0]}) — the run folder's files do not belong together; "
                "re-train the run"
            ) from None
        torch_device = device if isinstance(device, torch.device) else resolve_device(device)
        model.to(torch_device).eval()
        selection = self.selection(config.train.select, scored, last)
        return TrainedModel(model, config, fingerprint, torch_device, selection, int(last["epoch"]))

    # ------------------------------------------------------------------ evaluation outputs

    def write_metrics(self, metrics: dict) -> Path:
        return atomic_write_json(self.metrics_file, metrics)

    def write_features(self, arrays: dict[str, np.ndarray]) -> Path:
        return atomic_write_npz(self.features_file, arrays)

    def read_metrics(self) -> dict:
        """metrics.json; ValueError with the reason when it is unreadable."""
        try:
            return json.loads(self.metrics_file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{self.metrics_file} is unreadable ({error})") from None

    def read_features(self) -> dict[str, np.ndarray] | None:
        """features.npz's arrays, or None when it is missing or unreadable."""
        if not self.features_file.is_file():
            return None
        try:
            return read_npz(self.features_file)
        except ValueError:
            return None

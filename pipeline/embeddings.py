"""Tracklet embeddings on disk, and the fingerprint of the model that made them.

An embeddings file (`.npz`, read with `allow_pickle=False`) holds one L2-normalised row per
tracklet plus its metadata, and the fingerprint of the trained run that computed it, so that
`search` embeds a query with exactly that model and refuses a mismatched one:

    features (N, D) float32 · keys, pids, clothes, paths (N,) str · cameras (N,) int64
    info     0-d str: JSON {"format", "version", "run", "run_dir", "checkpoint_sha256",
             "config_sha256", "fingerprint", "dataset", "root", "manifest", "created"}

The model fingerprint (`pipeline.runs.ModelFingerprint`) hashes the run's scored checkpoint and
its resolved configuration: the same run re-trained, resumed or re-configured gets another one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import StageError
from pipeline.io import atomic_write_npz, read_npz
from pipeline.runs import ModelFingerprint

FORMAT = "asgl-embeddings"
VERSION = 1
ARRAYS = ("features", "keys", "pids", "clothes", "cameras", "paths")


@dataclass
class EmbeddingSet:
    """Embeddings of a set of tracklets and the model that computed them."""

    features: np.ndarray  # (N, D) float32, rows L2-normalised
    keys: list[str]
    pids: list[str]
    clothes: list[str]
    cameras: list[int]
    paths: list[str]  # the tracklet's video file or frame folder
    model: ModelFingerprint
    data: dict[str, str] = field(
        default_factory=dict
    )  # config.data of the embedded set: dataset, root, manifest

    def __len__(self) -> int:
        return len(self.keys)

    def info(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "run": self.model.run,
            "run_dir": self.model.run_dir,
            "checkpoint_sha256": self.model.checkpoint_sha256,
            "config_sha256": self.model.config_sha256,
            "fingerprint": self.model.fingerprint,
            **{name: str(self.data.get(name, "")) for name in ("dataset", "root", "manifest")},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def write_embeddings(path: str | Path, embeddings: EmbeddingSet) -> Path:
    """Write atomically (temporary file, then rename); returns the path."""
    n = len(embeddings)
    features = np.asarray(embeddings.features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] != n:
        raise ValueError(f"features must be ({n}, D), got {features.shape}")
    arrays = {
        "features": features,
        "keys": np.array(embeddings.keys, dtype=str).reshape(n),
        "pids": np.array(embeddings.pids, dtype=str).reshape(n),
        "clothes": np.array(embeddings.clothes, dtype=str).reshape(n),
        "cameras": np.array(embeddings.cameras, dtype=np.int64).reshape(n),
        "paths": np.array(embeddings.paths, dtype=str).reshape(n),
        "info": np.array(json.dumps(embeddings.info(), sort_keys=True)),
    }
    return atomic_write_npz(path, arrays)


def read_embeddings(path: str | Path) -> EmbeddingSet:
    """Read a file written by `write_embeddings`; StageError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise StageError(
            f"embeddings file {path} does not exist — make one with `asgl-pipeline embed`"
        )
    not_ours = (
        f"{path} is not an embeddings file written by `asgl-pipeline embed` — re-create it with "
        "`asgl-pipeline embed`"
    )
    try:
        data = read_npz(path)
    except ValueError as error:
        raise StageError(
            f"embeddings file {path} cannot be read: {error} — re-create it with "
            "`asgl-pipeline embed`"
        ) from None
    try:
        info = json.loads(str(data["info"][()]))
        arrays = {name: data[name] for name in ARRAYS}
    except (ValueError, KeyError, IndexError, json.JSONDecodeError):
        raise StageError(not_ours) from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise StageError(not_ours)
    if info.get("version") != VERSION:
        raise StageError(
            f"{path} has embeddings format version {info.get('version')}, this version reads "
            f"{VERSION} — re-create it with `asgl-pipeline embed`"
        )
    model = ModelFingerprint(
        run=info["run"],
        run_dir=info["run_dir"],
        checkpoint_sha256=info["checkpoint_sha256"],
        config_sha256=info["config_sha256"],
    )
    return EmbeddingSet(
        features=arrays["features"].astype(np.float32),
        keys=[str(k) for k in arrays["keys"]],
        pids=[str(p) for p in arrays["pids"]],
        clothes=[str(c) for c in arrays["clothes"]],
        cameras=[int(c) for c in arrays["cameras"]],
        paths=[str(p) for p in arrays["paths"]],
        model=model,
        data={name: info.get(name, "") for name in ("dataset", "root", "manifest")},
    )

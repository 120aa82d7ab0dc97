"""`asgl-pipeline embed`: one L2-normalised embedding per tracklet of one's own footage (or any
dataset layout), computed with a trained run's model and configuration.

    tracklets ─ preprocess stage (skeleton cache next to the output; cached ones skipped)
              ─ the run's model on deterministic test clips (as evaluation) ─→ embeddings file

What "the run's configuration" fixes: input size, clip length, pose 2D/3D, branch switches and the
skeleton normalisation the model was trained on; the command line only chooses the data, the
workers and the device. `search` and `export` load the model through `load_trained_model` here.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.cache import SkeletonCache, failures_path
from pipeline.config import Config, eval_stride, load_config_file
from pipeline.data import ClipSource
from pipeline.data.splits import POSE_FIELDS
from pipeline.datasets import Tracklet, load_tracklets
from pipeline.embeddings import (
    EmbeddingSet,
    ModelFingerprint,
    model_fingerprint,
    run_files,
    write_embeddings,
)
from stages import StageError


@dataclass
class TrainedModel:
    """A run's model in eval mode, with the configuration it was trained with."""

    model: object  # pipeline.models.ASGL
    config: Config  # the run's resolved config.toml
    fingerprint: ModelFingerprint
    device: object  # torch.device


@dataclass
class EmbedResult:
    out: str
    cache: str
    tracklets: int  # loadable tracklets in the dataset
    embedded: int
    missing: list[str]  # keys with no cached skeleton (see the cache's failures CSV)
    dim: int
    fingerprint: str
    seconds: float


def load_trained_model(run_dir: str | Path, device: str = "cpu") -> TrainedModel:
    """The run's model, built from its config.toml, with the checkpoint evaluation uses (`best.pt`
    when the run selects on validation, else `last.pt`), in eval mode on `device`."""
    from pipeline.models import build_model
    from pipeline.training import load_checkpoint, resolve_device

    checkpoint_path, config_path = run_files(run_dir)
    fingerprint = model_fingerprint(run_dir)
    config = load_config_file(config_path)
    state = load_checkpoint(checkpoint_path)["model"]
    # The identity classifier only serves training: retrieval uses the fused embedding.
    state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    model = build_model(dataclasses.replace(config.model, backbone_weights=""), num_classes=0)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise StageError(
            f"checkpoint {checkpoint_path} does not fit the model described by {config_path} "
            f"({str(error).splitlines()[0]}) — the run folder's files do not belong together; "
            "re-train the run"
        ) from None
    torch_device = resolve_device(device)
    model.to(torch_device).eval()
    return TrainedModel(model, config, fingerprint, torch_device)


def clip_source(tracklet: Tracklet, joints: np.ndarray | None, num_frames: int) -> ClipSource:
    """A tracklet (with its cached skeleton input) as evaluation's clip source; no labels."""
    return ClipSource(
        tracklet, num_frames, joints, pid_index=-1, camera=int(tracklet.camera), clothes_index=-1
    )


def embed_sources(trained: TrainedModel, sources: list[ClipSource]) -> np.ndarray:
    """(N, D) L2-normalised embeddings, computed exactly as evaluation computes features."""
    import torch

    from pipeline.training import extract_features

    cfg = trained.config
    amp = cfg.train.amp and trained.device.type == "cuda"  # as evaluation runs it
    with torch.no_grad():
        return extract_features(
            trained.model, sources, cfg.eval.seq_len, eval_stride(cfg), cfg.eval.batch_size,
            cfg.train.height, cfg.train.width, trained.device, amp=amp,
        )  # fmt: skip


def default_output(run_dir: Path, root: str) -> Path:
    return run_dir / "embeddings" / f"{Path(root).absolute().name or 'dataset'}.npz"


def skeleton_cache_for(out: Path) -> Path:
    """The skeleton cache kept next to an embeddings file: `x.npz` → `x.skeletons.h5`."""
    return out.with_name(out.stem + ".skeletons.h5")


def preprocess_config(user: Config, run_config: Config, cache: Path) -> Config:
    """The preprocess stage's configuration for embedding: the user's data and workers, the run's
    pose settings (the model was trained on skeletons made that way)."""
    pre = dataclasses.replace(
        run_config.preprocess,
        workers=user.preprocess.workers,
        backend=user.preprocess.backend,
        scheduler=user.preprocess.scheduler,
        limit=0,
        strict=False,
        overwrite=user.preprocess.overwrite,
    )
    data = dataclasses.replace(user.data, cache=str(cache))
    return dataclasses.replace(run_config, data=data, preprocess=pre)


def run(
    config: Config, *, run_dir: str | Path, out: str | Path = "", cache: str | Path = ""
) -> EmbedResult:
    """Embed every tracklet of `config.data`'s dataset with the run at `run_dir`."""
    from stages import preprocess

    started = time.perf_counter()
    run_dir = Path(run_dir)
    # The model first: a missing checkpoint or device fails before minutes of pose extraction.
    trained = load_trained_model(run_dir, config.train.device)
    out = Path(out) if out else default_output(run_dir, config.data.root)
    cache = Path(cache) if cache else skeleton_cache_for(out)

    preprocess.run(preprocess_config(config, trained.config, cache))
    tracklets, _failures = load_tracklets(
        config.data.dataset, config.data.root, config.data.manifest
    )

    pose_field = POSE_FIELDS[trained.config.model.pose]
    sources, missing = [], []
    with SkeletonCache(cache) as skeletons:
        for tracklet in tracklets:
            if tracklet.key not in skeletons:
                missing.append(tracklet.key)  # preprocess recorded why (no person, unreadable)
                continue
            joints = skeletons.read(tracklet.key, (pose_field,))[pose_field]
            sources.append(
                clip_source(tracklet, joints if trained.model.needs_joints else None, len(joints))
            )
    if not sources:
        raise StageError(
            f"no tracklet of {config.data.root} has a usable skeleton (none of {len(tracklets)} "
            f"cached) — see {failures_path(cache)} for why"
        )
    kept = [source.tracklet for source in sources]
    embeddings = EmbeddingSet(
        features=embed_sources(trained, sources),
        keys=[t.key for t in kept],
        pids=[t.pid for t in kept],
        clothes=[t.clothes for t in kept],
        cameras=[int(t.camera) for t in kept],
        paths=[t.source for t in kept],
        model=trained.fingerprint,
        source={
            "dataset": config.data.dataset,
            "root": str(Path(config.data.root).absolute()),
            "manifest": config.data.manifest,
        },
    )
    write_embeddings(out, embeddings)
    result = EmbedResult(
        out=str(out),
        cache=str(cache),
        tracklets=len(tracklets),
        embedded=len(sources),
        missing=missing,
        dim=int(embeddings.features.shape[1]),
        fingerprint=trained.fingerprint.fingerprint,
        seconds=time.perf_counter() - started,
    )
    print(
        f"embed: {result.embedded}/{result.tracklets} tracklets → {out} ({result.dim}-d, "
        f"{trained.fingerprint.describe()}); {len(missing)} without a skeleton; "
        f"{result.seconds:.1f} s"
    )
    return result

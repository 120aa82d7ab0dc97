"""`asgl-pipeline embed`: one L2-normalised embedding per tracklet of one's own footage (or any
dataset layout), computed with a trained run's model and configuration.

    tracklets ─ preprocess stage (skeleton cache next to the output; cached ones skipped)
              ─ the run's model on deterministic test clips (as evaluation) ─→ embeddings file

What "the run's configuration" fixes: input size, clip length, pose 2D/3D, branch switches and the
skeleton normalisation the model was trained on; the command line only chooses the data, the
workers and the device. The model comes from `pipeline.runs.RunFolder.load_model`, the features
from `pipeline.evaluation`, as for `search` and `export`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.cache import POSE_FIELDS, SkeletonCache, failures_path, pose_input
from pipeline.config import Config
from pipeline.data.dataset import ClipSource
from pipeline.embeddings import EmbeddingSet, write_embeddings
from pipeline.evaluation import clip_source, embed_sources
from pipeline.layouts import Tracklet, load_tracklets
from pipeline.runs import RunFolder, TrainedModel
from stages import StageError, preprocess


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
        verbose=user.preprocess.verbose,
    )
    data = dataclasses.replace(user.data, cache=str(cache))
    return dataclasses.replace(run_config, data=data, preprocess=pre)


def cached_sources(
    tracklets: list[Tracklet], cache: Path, trained: TrainedModel
) -> tuple[list[ClipSource], list[str]]:
    """The tracklets that have a cached skeleton as clip sources, and the keys of those that do
    not (preprocess recorded why: no person, unreadable)."""
    pose = trained.config.model.pose
    sources, missing = [], []
    with SkeletonCache(cache) as skeletons:
        for tracklet in tracklets:
            if tracklet.key not in skeletons:
                missing.append(tracklet.key)
                continue
            joints = pose_input(skeletons.read(tracklet.key, POSE_FIELDS[pose]), pose)
            sources.append(
                clip_source(tracklet, joints if trained.model.needs_joints else None, len(joints))
            )
    return sources, missing


def run(
    config: Config,
    *,
    out: str | Path = "",
    cache: str | Path = "",
    log: Callable[[str], None] = print,
) -> EmbedResult:
    """Embed every tracklet of `config.data`'s dataset with the run `train.run` (a name under
    `paths.runs_dir`, or a path)."""
    folder = RunFolder.resolve(config.train.run, config.paths.runs_dir)
    folder.require_trained()  # before the lock, which would create the runs folder
    with folder.lock("embed"):  # no re-training under it while its embeddings are written
        return _embed(config, folder, out, cache, log)


def _embed(
    config: Config,
    folder: RunFolder,
    out: str | Path,
    cache: str | Path,
    log: Callable[[str], None],
) -> EmbedResult:
    started = time.perf_counter()
    # The model first: a missing checkpoint or device fails before minutes of pose extraction.
    trained = folder.load_model(config.train.device)
    out = Path(out) if out else default_output(folder.path, config.data.root)
    cache = Path(cache) if cache else skeleton_cache_for(out)

    preprocess.run(preprocess_config(config, trained.config, cache), log=log)
    tracklets, _failures = load_tracklets(
        config.data.dataset, config.data.root, config.data.manifest
    )

    sources, missing = cached_sources(tracklets, cache, trained)
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
        data={
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
    log(
        f"embed: {result.embedded}/{result.tracklets} tracklets → {out} ({result.dim}-d, "
        f"{trained.fingerprint.describe()}); {len(missing)} without a skeleton; "
        f"{result.seconds:.1f} s"
    )
    return result

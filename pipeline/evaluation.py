"""A model applied to clip sources (SPEC §7): each tracklet's deterministic clips embedded and
averaged into one L2-normalised feature; on a query/gallery split, the three settings scored and
written into the run folder (`metrics.json`, `features.npz`). Training's final evaluation, the
evaluate stage and `embed` / `search` all compute features here, so they agree exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from pipeline.confidence import describe_method, format_cell, summaries_with_confidence
from pipeline.config import Config, eval_stride
from pipeline.data import EvalClips
from pipeline.data.dataset import ClipSource
from pipeline.data.splits import DataSplits
from pipeline.errors import StageError
from pipeline.layouts import Tracklet
from pipeline.metrics import Labels, evaluate
from pipeline.runs import RunFolder, TrainedModel
from pipeline.runtime import seed_worker

CLIP_RULE = "CAL _recombination_for_testset"


def model_inputs(model, frames: torch.Tensor, joints: torch.Tensor, device: torch.device):
    """(frames, joints) on `device`, None for a branch the model does not have."""
    frames = frames.to(device, non_blocking=True) if model.needs_frames else None
    joints = joints.to(device, non_blocking=True) if model.needs_joints else None
    return frames, joints


def eval_loader(
    sources: list[ClipSource],
    config: Config,
    load_frames: bool,
    device: torch.device,
    num_workers: int = 0,
) -> DataLoader:
    """Each tracklet's test clips by CAL's rule (SPEC §7), in order, batched as `eval` says:
    (frames, joints, tracklet index) per batch."""
    dataset = EvalClips(
        sources,
        config.eval.seq_len,
        eval_stride(config),
        config.train.height,
        config.train.width,
        load_frames=load_frames,
    )
    return DataLoader(
        dataset,
        batch_size=max(1, config.eval.batch_size),
        shuffle=False,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        pin_memory=device.type == "cuda",
    )


def normalised_means(sums: torch.Tensor, counts: torch.Tensor) -> np.ndarray:
    """Tracklet features from per-tracklet clip sums (…, N, D) and clip counts (N,): the
    mean over each tracklet's clips, L2-normalised (a tracklet without clips stays 0)."""
    means = (sums / counts.clamp(min=1)[:, None]).float()
    return torch.nn.functional.normalize(means, dim=-1).numpy()


@dataclass
class Embedded:
    """What `extract_embeddings` returns: per tracklet, the fused feature and each branch's own
    (the fused embedding a one-hot fusion weight on it would give, `AdaptiveFusion.alone`), all
    clip-averaged and L2-normalised, plus the mean fusion weight of every branch over the clips."""

    features: np.ndarray  # (N, D)
    branch_features: dict[str, np.ndarray]  # branch name → (N, D)
    mean_weights: dict[str, float]
    clips: int = 0  # clips the means are over


@torch.no_grad()
def extract_embeddings(
    model, sources: list[ClipSource], config: Config, device: torch.device, num_workers: int = 0
) -> Embedded:
    """Each tracklet's test clips by CAL's rule (SPEC §7, `test_clip_indices`) embedded and
    averaged (see `Embedded`). Clip length, stride, batch and input size come from `config`
    (eval / train sections); AMP when the run trains with it on CUDA."""
    core = model.module if hasattr(model, "module") else model
    amp = config.train.amp and device.type == "cuda"
    was_training = core.training
    core.eval()
    loader = eval_loader(sources, config, core.needs_frames, device, num_workers)
    names = core.branch_names
    # slot 0: the fused embedding; slot 1 + k: branch k alone
    sums = torch.zeros(1 + len(names), len(sources), core.embedding_dim, dtype=torch.float64)
    counts = torch.zeros(len(sources), dtype=torch.float64)
    weight_sum = torch.zeros(len(names), dtype=torch.float64)
    for frames, joints, index in loader:
        frames, joints = model_inputs(core, frames, joints, device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            output = core(frames, joints)
            alone = core.fusion.alone(output.projected)
        sums[0].index_add_(0, index, output.embedding.float().cpu().double())
        for k in range(len(names)):
            sums[1 + k].index_add_(0, index, alone[:, k].float().cpu().double())
        counts.index_add_(0, index, torch.ones(len(index), dtype=torch.float64))
        weight_sum += output.branch_weights.float().cpu().double().sum(0)
    core.train(was_training)
    features = normalised_means(sums, counts)
    clips = max(1.0, float(counts.sum()))
    return Embedded(
        features[0],
        {name: features[1 + k] for k, name in enumerate(names)},
        {name: float(weight_sum[k]) / clips for k, name in enumerate(names)},
        int(counts.sum()),
    )


def extract_features(
    model, sources: list[ClipSource], config: Config, device: torch.device, num_workers: int = 0
) -> np.ndarray:
    """(N, D) L2-normalised fused features (`extract_embeddings`)."""
    return extract_embeddings(model, sources, config, device, num_workers).features


def clip_rule(config: Config) -> dict:
    """How the test clips were cut, recorded beside the features and metrics they produced."""
    return {"rule": CLIP_RULE, "seq_len": int(config.eval.seq_len), "stride": eval_stride(config)}


def source_labels(sources: list[ClipSource]) -> Labels:
    return Labels(
        np.array([s.tracklet.pid for s in sources], dtype=str),
        np.array([s.camera for s in sources], dtype=np.int64),
        np.array([s.tracklet.clothes for s in sources], dtype=str),
    )


def clip_source(tracklet: Tracklet, joints: np.ndarray | None, num_frames: int) -> ClipSource:
    """A tracklet (with its cached skeleton input) as evaluation's clip source; no labels."""
    return ClipSource(
        tracklet, num_frames, joints, pid_index=-1, camera=int(tracklet.camera), clothes_index=-1
    )


def embed_sources(trained: TrainedModel, sources: list[ClipSource]) -> np.ndarray:
    """(N, D) L2-normalised embeddings, computed exactly as evaluation computes features."""
    return extract_features(trained.model, sources, trained.config, trained.device)


def _feature_arrays(prefix: str, features: np.ndarray, sources: list[ClipSource]) -> dict:
    return {
        f"{prefix}_features": features.astype(np.float32),
        f"{prefix}_pids": np.array([s.tracklet.pid for s in sources], dtype=str),
        f"{prefix}_cameras": np.array([s.camera for s in sources], dtype=np.int64),
        f"{prefix}_clothes": np.array([s.tracklet.clothes for s in sources], dtype=str),
        f"{prefix}_keys": np.array([s.key for s in sources], dtype=str),
        f"{prefix}_paths": np.array([s.tracklet.source for s in sources], dtype=str),
    }


def format_table(settings: dict[str, dict]) -> str:
    """The metrics table the evaluate and train stages print: R-1 and mAP with their 95 %
    intervals, and the chance level measured on the same test set."""
    header = (
        f"{'setting':<10}{'R-1 [95 % CI]':>20}{'R-5':>7}{'R-10':>7}{'R-20':>7}"
        f"{'mAP [95 % CI]':>21}{'chance R-1/mAP':>16}{'queries':>9}{'skipped':>9}"
    )
    lines = [header]
    for name, s in settings.items():
        intervals, chance = s.get("intervals", {}), s.get("chance", {})
        chance_text = (
            f"{chance['R-1']:.1f}/{chance['mAP']:.1f}"
            if "R-1" in chance and "mAP" in chance
            else "-"
        )
        lines.append(
            f"{name:<10}{format_cell(s['R-1'], intervals.get('R-1')):>20}{s['R-5']:>7.1f}"
            # 21: "100.0 [100.0, 100.0]" is 20 characters and must not touch R-20's cell
            f"{s['R-10']:>7.1f}{s['R-20']:>7.1f}{format_cell(s['mAP'], intervals.get('mAP')):>21}"
            f"{chance_text:>16}{s['queries']:>9}{s['skipped']:>9}"
        )
    return "\n".join(lines)


def branch_metrics(
    query: Embedded, gallery: Embedded, query_labels: Labels, gallery_labels: Labels, config: Config
) -> dict:
    """Each branch's own embedding scored alone (the three settings) and its fusion weight
    averaged over every query and gallery clip: which cue did the work, which collapsed."""
    ranks = tuple(config.eval.ranks)
    clips = max(1, query.clips + gallery.clips)
    branches = {}
    for name in query.branch_features:
        results = evaluate(
            query.branch_features[name],
            gallery.branch_features[name],
            query_labels,
            gallery_labels,
            chunk_size=config.eval.chunk_size,
            max_rank=max(20, *ranks),
        )
        weight = query.mean_weights[name] * query.clips + gallery.mean_weights[name] * gallery.clips
        branches[name] = {
            # with 95 % intervals like the fused numbers; the chance level is the test set's, above
            "settings": summaries_with_confidence(
                results,
                query_labels,
                gallery_labels,
                ranks,
                config.eval.bootstrap,
                config.eval.bootstrap_seed,
                chance_repeats=0,
            ),
            "mean_weight": weight / clips,
        }
    return branches


def format_branch_table(branches: dict[str, dict]) -> str:
    """Per branch: its mean fusion weight, R-1 / mAP of its own embedding in every setting."""
    settings = list(next(iter(branches.values()))["settings"]) if branches else []
    header = f"{'branch':<12}{'weight':>8}" + "".join(
        f"{s + ' R-1':>13}{'mAP':>7}" for s in settings
    )
    lines = [header]
    for branch, info in branches.items():
        cells = "".join(
            f"{info['settings'][s]['R-1']:>13.1f}{info['settings'][s]['mAP']:>7.1f}"
            for s in settings
        )
        lines.append(f"{branch:<12}{info['mean_weight']:>8.3f}{cells}")
    return "\n".join(lines)


def _metrics_record(
    config: Config, run: RunFolder, splits: DataSplits, epochs: int, selection: dict, settings: dict
) -> dict:
    model_cfg, ev = config.model, config.eval
    return {
        "run": run.name,
        "dataset": config.data.dataset,
        "data_root": config.data.root,
        "profile": config.profile,
        "date": dt.date.today().isoformat(),
        "epochs": int(epochs),
        "backbone_weights": model_cfg.backbone_weights or None,
        "variant": {
            "use_appearance": model_cfg.use_appearance,
            "use_shape": model_cfg.use_shape,
            "use_gait": model_cfg.use_gait,
            "graph": model_cfg.graph,
            "pose": model_cfg.pose,
        },
        "selection": selection,
        "clips": clip_rule(config),
        "tracklets": {"query": len(splits.query), "gallery": len(splits.gallery)},
        "excluded_tracklets": {k: v for k, v in splits.excluded.items() if k != "train"},
        "confidence": describe_method(ev.bootstrap, ev.bootstrap_seed, ev.chance_repeats),
        "settings": settings,
        "skeletons": splits.skeletons,
    }


@torch.no_grad()
def evaluate_model(
    config: Config,
    model,
    splits: DataSplits,
    run: RunFolder,
    device: torch.device,
    epochs: int,
    selection: dict,
    log: Callable[[str], None] = print,
) -> dict:
    """Features for query and gallery, the three settings, `metrics.json` and `features.npz`."""
    if not splits.query or not splits.gallery:
        raise StageError(
            f"{config.data.root} has {len(splits.query)} query and {len(splits.gallery)} gallery "
            "tracklets in the cache — evaluation needs both; check the split files and preprocess"
        )
    workers = config.train.num_workers
    query = extract_embeddings(model, splits.query, config, device, workers)
    gallery = extract_embeddings(model, splits.gallery, config, device, workers)
    query_features, gallery_features = query.features, gallery.features
    ranks, ev = tuple(config.eval.ranks), config.eval
    query_labels, gallery_labels = source_labels(splits.query), source_labels(splits.gallery)
    results = evaluate(
        query_features,
        gallery_features,
        query_labels,
        gallery_labels,
        chunk_size=ev.chunk_size,
        max_rank=max(20, *ranks),
    )
    run.write_features(
        {
            **_feature_arrays("query", query_features, splits.query),
            **_feature_arrays("gallery", gallery_features, splits.gallery),
            **{f"clip_{key}": np.array(value) for key, value in clip_rule(config).items()},
        }
    )
    settings = summaries_with_confidence(
        results,
        query_labels,
        gallery_labels,
        ranks,
        ev.bootstrap,
        ev.bootstrap_seed,
        ev.chance_repeats,
        ev.chunk_size,
    )
    metrics = _metrics_record(config, run, splits, epochs, selection, settings)
    metrics["branches"] = branch_metrics(query, gallery, query_labels, gallery_labels, config)
    run.write_metrics(metrics)
    log(format_table(metrics["settings"]))
    log(format_branch_table(metrics["branches"]))
    log(f"evaluate: metrics → {run.metrics_file}, features → {run.features_file}")
    return metrics

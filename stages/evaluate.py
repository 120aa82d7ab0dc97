"""`asgl-pipeline evaluate --run NAME`: score a trained run on its dataset's query/gallery split
(SPEC §7) and write `metrics.json` + `features.npz` into the run folder (contracts in
docs/ARCHITECTURE.md). The train stage calls `evaluate_model` the same way after training.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.confidence import describe_method, format_cell, summaries_with_confidence
from pipeline.config import Config, ConfigError, eval_stride, load_config_file
from pipeline.data.dataset import ClipSource
from pipeline.data.splits import DataSplits, load_splits
from pipeline.io import atomic_write, atomic_write_json
from pipeline.metrics import Labels, evaluate
from stages import StageError

CLIP_RULE = "CAL _recombination_for_testset"


def _labels(sources: list[ClipSource]) -> Labels:
    return Labels(
        np.array([s.tracklet.pid for s in sources], dtype=str),
        np.array([s.camera for s in sources], dtype=np.int64),
        np.array([s.tracklet.clothes for s in sources], dtype=str),
    )


def _feature_arrays(prefix: str, features: np.ndarray, sources: list[ClipSource]) -> dict:
    return {
        f"{prefix}_features": features.astype(np.float32),
        f"{prefix}_pids": np.array([s.tracklet.pid for s in sources], dtype=str),
        f"{prefix}_cameras": np.array([s.camera for s in sources], dtype=np.int64),
        f"{prefix}_clothes": np.array([s.tracklet.clothes for s in sources], dtype=str),
        f"{prefix}_keys": np.array([s.key for s in sources], dtype=str),
        f"{prefix}_paths": np.array([s.tracklet.source for s in sources], dtype=str),
    }


def clip_rule(config: Config) -> dict:
    """How the test clips were cut, recorded beside the features and metrics they produced."""
    return {"rule": CLIP_RULE, "seq_len": int(config.eval.seq_len), "stride": eval_stride(config)}


def format_table(settings: dict[str, dict]) -> str:
    """The metrics table the evaluate and train stages print: R-1 and mAP with their 95 %
    intervals, and the chance level measured on the same test set."""
    header = (
        f"{'setting':<10}{'R-1 [95 % CI]':>20}{'R-5':>7}{'R-10':>7}{'R-20':>7}"
        f"{'mAP [95 % CI]':>20}{'chance R-1/mAP':>16}{'queries':>9}{'skipped':>9}"
    )
    lines = [header]
    for name, s in settings.items():
        intervals, chance = s.get("intervals", {}), s.get("chance", {})
        chance_text = (
            f"{chance['R-1']:.1f}/{chance['mAP']:.1f}" if "R-1" in chance and "mAP" in chance else "-"
        )
        lines.append(
            f"{name:<10}{format_cell(s['R-1'], intervals.get('R-1')):>20}{s['R-5']:>7.1f}"
            f"{s['R-10']:>7.1f}{s['R-20']:>7.1f}{format_cell(s['mAP'], intervals.get('mAP')):>20}"
            f"{chance_text:>16}{s['queries']:>9}{s['skipped']:>9}"
        )
    return "\n".join(lines)


def evaluate_model(
    config: Config,
    model,
    splits: DataSplits,
    run_dir: Path,
    device,
    epochs: int,
    selection: dict,
    log: Callable[[str], None] = print,
) -> dict:
    """Features for query and gallery, the three settings, `metrics.json` and `features.npz`."""
    from pipeline.training import extract_features

    if not splits.query or not splits.gallery:
        raise StageError(
            f"{config.data.root} has {len(splits.query)} query and {len(splits.gallery)} gallery "
            "tracklets in the cache — evaluation needs both; check the split files and preprocess"
        )
    amp = config.train.amp and device.type == "cuda"

    def features(sources):
        return extract_features(
            model, sources, config.eval.seq_len, eval_stride(config), config.eval.batch_size,
            config.train.height, config.train.width, device, config.train.num_workers, amp,
        )  # fmt: skip

    query_features, gallery_features = features(splits.query), features(splits.gallery)
    ranks = tuple(config.eval.ranks)
    ev = config.eval
    query_labels, gallery_labels = _labels(splits.query), _labels(splits.gallery)
    results = evaluate(
        query_features, gallery_features, query_labels, gallery_labels,
        chunk_size=ev.chunk_size, max_rank=max(20, *ranks),
    )  # fmt: skip
    clips = clip_rule(config)
    arrays = {
        **_feature_arrays("query", query_features, splits.query),
        **_feature_arrays("gallery", gallery_features, splits.gallery),
        **{f"clip_{key}": np.array(value) for key, value in clips.items()},
    }
    atomic_write(run_dir / "features.npz", lambda tmp: _save_npz(tmp, arrays))
    model_cfg = config.model
    metrics = {
        "run": config.train.run,
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
        "clips": clips,
        "tracklets": {"query": len(splits.query), "gallery": len(splits.gallery)},
        "excluded_tracklets": {k: v for k, v in splits.excluded.items() if k != "train"},
        "confidence": describe_method(ev.bootstrap, ev.bootstrap_seed, ev.chance_repeats),
        "settings": summaries_with_confidence(
            results, query_labels, gallery_labels, ranks, ev.bootstrap, ev.bootstrap_seed,
            ev.chance_repeats, ev.chunk_size,
        ),  # fmt: skip
    }
    atomic_write_json(run_dir / "metrics.json", metrics)
    log(format_table(metrics["settings"]))
    log(f"evaluate: metrics → {run_dir / 'metrics.json'}, features → {run_dir / 'features.npz'}")
    return metrics


def _save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as handle:  # a file object, so numpy does not append ".npz" to the name
        np.savez(handle, **arrays)


def run(config, log: Callable[[str], None] = print) -> dict:
    """Evaluate `paths.runs_dir/train.run` with the configuration it was trained with."""
    import torch

    from pipeline.models import build_model
    from pipeline.training import load_checkpoint, resolve_device

    run_dir = Path(config.paths.runs_dir) / config.train.run
    config_path = run_dir / "config.toml"
    if not config_path.is_file():
        raise StageError(
            f"no trained run at {run_dir} (no config.toml) — pass --run NAME of a folder under "
            f"{config.paths.runs_dir}, or train one with `asgl-pipeline train --run NAME`"
        )
    try:
        run_config = load_config_file(config_path)
    except ConfigError as error:
        raise StageError(f"{config_path} cannot be read ({error}) — re-train the run") from None
    # The run decides what was trained; this invocation decides where it runs and the run's name.
    run_config = dataclasses.replace(
        run_config,
        train=dataclasses.replace(
            run_config.train, device=config.train.device, run=config.train.run
        ),
        paths=config.paths,
    )
    checkpoints = run_dir / "checkpoints"
    use_best = run_config.train.select == "val" and (checkpoints / "best.pt").is_file()
    checkpoint_path = checkpoints / ("best.pt" if use_best else "last.pt")
    state = load_checkpoint(checkpoint_path)
    last_state = state if not use_best else load_checkpoint(checkpoints / "last.pt")

    model_cfg = run_config.model
    needs_joints = model_cfg.use_shape or model_cfg.use_gait
    splits = load_splits(run_config, needs_joints, splits=("query", "gallery"), log=log)
    device = resolve_device(run_config.train.device)
    model = build_model(
        dataclasses.replace(model_cfg, backbone_weights=""), int(last_state["num_classes"])
    )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise StageError(
            f"{checkpoint_path} does not fit the model in {config_path} "
            f"({str(error).splitlines()[0]}) — the run folder's files do not belong together"
        ) from None
    model.to(device)
    selection = {
        "rule": run_config.train.select,
        "checkpoint": checkpoint_path.name,
        "epoch": int(state["epoch"]),
    }
    if use_best:
        selection.update(val_ids=list(last_state.get("val_pids", [])), val_map=state.get("score"))
    with torch.no_grad():
        return evaluate_model(
            run_config, model, splits, run_dir, device, int(last_state["epoch"]), selection, log
        )

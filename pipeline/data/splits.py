"""Match a dataset's split files with its skeleton cache, with one clear message for each way
they can disagree (SPEC §9): no cache, a cache built from another dataset or root, tracklets the
split names but the cache lacks, frames that moved since preprocessing.

Tracklets that preprocess recorded as failures (e.g. no person detected) are left out with a
counted warning; a missing tracklet that no failure explains means the cache does not belong to
this split (a `preprocess.limit` run, an older dataset) and stops the run.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.cache import (
    POSE_FIELDS,
    SkeletonCache,
    attribute,
    failures_path,
    pose_input,
    repair_advice,
)
from pipeline.data.dataset import ClipSource
from pipeline.errors import CacheError, DamagedTrackletError, StageError
from pipeline.layouts import Tracklet, load_tracklets


@dataclass
class DataSplits:
    """Clip sources per split. `class_pids[i]` is the identity of training class i."""

    train: list[ClipSource]
    query: list[ClipSource]
    gallery: list[ClipSource]
    val: list[ClipSource] = field(default_factory=list)  # identities carved from train
    class_pids: list[str] = field(default_factory=list)
    val_pids: list[str] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)  # split → tracklets left out (failures)
    # Where the skeletons came from (cache path, pose_source, normalisation): read while the cache
    # is open, for metrics.json, so evaluation need not open it again.
    skeletons: dict[str, Any] = field(default_factory=dict)


def _same_path(a: str, b: str) -> bool:
    return Path(a).absolute() == Path(b).absolute() or Path(a).resolve() == Path(b).resolve()


def open_cache(data_cfg) -> SkeletonCache:
    """The skeleton cache of `data_cfg`, checked to have been built from the same dataset and root."""
    cache = SkeletonCache(data_cfg.cache)  # CacheError (a StageError) when it does not exist
    built_dataset = str(cache.attrs.get("dataset", ""))
    built_root = str(cache.attrs.get("root", ""))
    if built_dataset and built_dataset != data_cfg.dataset:
        raise StageError(
            f"skeleton cache {data_cfg.cache} was built from a '{built_dataset}' dataset, but "
            f"data.dataset is '{data_cfg.dataset}' — set `data.dataset` to {built_dataset}, or point "
            "`data.cache` at this dataset's cache (or build it with `asgl-pipeline preprocess`)"
        )
    if built_root and not _same_path(built_root, data_cfg.root):
        raise StageError(
            f"skeleton cache {data_cfg.cache} was built from the frames at {built_root}, but "
            f"data.root is {Path(data_cfg.root).absolute()} — set `data.root` to {built_root}, or, "
            "if the frames moved, re-run `asgl-pipeline preprocess` with the new `data.root`"
        )
    return cache


def recorded_failures(cache_path: str | Path) -> set[str]:
    """Tracklet keys preprocess recorded as failures (empty when there is no failures file)."""
    path = failures_path(cache_path)
    if not path.is_file():
        return set()
    with path.open(newline="") as handle:
        return {row["key"] for row in csv.DictReader(handle) if row.get("key")}


def _sources(
    tracklets: list[Tracklet],
    cache: SkeletonCache,
    pose: str | None,
    class_index: dict[str, int],
    clothes_index: dict[str, int],
) -> list[ClipSource]:
    sources, damaged = [], []
    for tracklet in tracklets:
        try:
            sources.append(_source(tracklet, cache, pose, class_index, clothes_index))
        except DamagedTrackletError:
            damaged.append(tracklet.key)  # go on, so the message can list them all
    if damaged:
        raise CacheError(
            f"skeleton cache {cache.path} is damaged: {len(damaged)} of {len(tracklets)} "
            f"tracklet(s) cannot be read ({', '.join(damaged[:5])}"
            f"{', …' if len(damaged) > 5 else ''}) — {repair_advice(cache.path)}"
        )
    return sources


def _source(
    tracklet: Tracklet,
    cache: SkeletonCache,
    pose: str | None,
    class_index: dict[str, int],
    clothes_index: dict[str, int],
) -> ClipSource:
    """One tracklet's clip source; DamagedTrackletError when its cached skeleton is damaged."""
    num_frames = int(cache.meta(tracklet.key).get("frames", 0))
    if tracklet.frames and len(tracklet.frames) != num_frames:
        raise StageError(
            f"{tracklet.source} has {len(tracklet.frames)} frames but its cached skeleton has "
            f"{num_frames} — the frames changed since preprocessing; re-run `asgl-pipeline "
            "preprocess` with `preprocess.overwrite`"
        )
    joints = None
    if pose is not None:
        joints = pose_input(cache.read(tracklet.key, POSE_FIELDS[pose]), pose)
        num_frames = len(joints)
    return ClipSource(
        tracklet=tracklet,
        num_frames=num_frames,
        joints=joints,
        pid_index=class_index.get(tracklet.pid, -1),
        camera=int(tracklet.camera),
        clothes_index=clothes_index[tracklet.clothes],
    )


def _dataset_tracklets(data, cache: SkeletonCache) -> list[Tracklet]:
    """The dataset's tracklets, checked to be the data the cache was built from."""
    if not Path(data.root).is_dir():
        raise StageError(
            f"frames folder {Path(data.root).absolute()} does not exist (the skeleton cache "
            f"{data.cache} was built from it) — if the frames moved, set `data.root` to where they "
            "are now and rebuild the cache with `asgl-pipeline preprocess`"
        )
    tracklets, _ = load_tracklets(data.dataset, data.root, data.manifest)
    listed, cached = {t.key for t in tracklets}, set(cache.keys())
    stray = sorted(cached - listed)
    if stray and not listed & cached:
        raise StageError(
            f"none of the {len(cached)} tracklets in {data.cache} is named by the splits of "
            f"{data.root} (e.g. cache has {stray[0]}) — the cache belongs to other data; set the "
            "matching `data.cache`, or re-run `asgl-pipeline preprocess`"
        )
    return tracklets


def _cached_by_split(
    data, cache: SkeletonCache, tracklets: list[Tracklet], splits: tuple[str, ...], log
) -> tuple[dict[str, list[Tracklet]], dict[str, int]]:
    """Each split's cached tracklets, and how many it lost to recorded preprocess failures."""
    listed, cached = {t.key for t in tracklets}, set(cache.keys())
    failed = recorded_failures(data.cache)
    by_split: dict[str, list[Tracklet]] = {}
    excluded: dict[str, int] = {}
    for split in splits:
        named = [t for t in tracklets if t.split == split]
        missing = [t.key for t in named if t.key not in cached]
        unexplained = [key for key in missing if key not in failed]
        if unexplained:
            raise StageError(
                f"the {split} split names {len(unexplained)} tracklet(s) that the skeleton cache "
                f"{data.cache} lacks (first: {unexplained[0]}) and preprocess recorded no failure "
                "for — the cache was built for other data or with `preprocess.limit`; re-run "
                f"`asgl-pipeline preprocess` for {data.root} into {data.cache}"
            )
        if missing:
            log(
                f"{split}: using {len(named) - len(missing)} of {len(named)} tracklets — "
                f"{len(missing)} failed in preprocess (see {failures_path(data.cache)})"
            )
        excluded[split] = len(missing)
        by_split[split] = [t for t in named if t.key in cached]
    cached_without_frames = sorted(
        key for key in cached - listed if cache.meta(key).get("split") in splits
    )
    if cached_without_frames:
        raise StageError(
            f"{len(cached_without_frames)} cached tracklet(s) have no frames under {data.root} "
            f"any more (first: {cached_without_frames[0]}) — the frames folder moved or changed "
            "since preprocessing; set `data.root` to where the frames are now, or re-run preprocess"
        )
    return by_split, excluded


def _validation_pids(config, train: list[Tracklet]) -> list[str]:
    """`train.val_ids` training identities drawn (seeded) for model selection."""
    train_pids = sorted({t.pid for t in train})
    if not 0 < config.train.val_ids < len(train_pids):
        raise StageError(
            f"train.select = 'val' and train.fusion_calibration = 'val' need 0 < train.val_ids "
            f"< {len(train_pids)} (the training identities); got {config.train.val_ids} — set "
            "`train.val_ids`"
        )
    rng = np.random.default_rng(config.train.seed)
    return sorted(rng.choice(train_pids, size=config.train.val_ids, replace=False).tolist())


def _check_frames(config, tracklets: list[Tracklet]) -> None:
    """A model with the appearance branch on a dataset without frames: one clear message."""
    without = [t for t in tracklets if not t.has_frames]
    if config.model.use_appearance and without:
        raise StageError(
            f"the appearance branch reads frames, but {len(without)} of {len(tracklets)} "
            f"tracklets of the '{config.data.dataset}' dataset at {config.data.root} have none "
            f"(e.g. {without[0].key}: a skeleton sequence) — train a skeleton-only variant "
            "(the appearance branch off: `model.use_appearance`, or the ucalgary profile)"
        )


def skeleton_record(path, attrs: dict[str, Any]) -> dict[str, Any]:
    """metrics.json's `skeletons`: which cache, pose source and normalisation a run was fed."""
    return {
        "cache": str(path),
        "pose_source": attribute(attrs, "pose_source"),
        "normalisation": attrs.get("normalisation"),
    }


def load_splits(
    config,
    needs_joints: bool,
    splits: tuple[str, ...] = ("train", "query", "gallery"),
    log: Callable[[str], None] = print,
) -> DataSplits:
    """Clip sources for `splits` from the dataset and cache of `config.data`; carves
    `train.val_ids` identities out of train for model selection or fusion calibration."""
    cache = open_cache(config.data)
    tracklets = _dataset_tracklets(config.data, cache)
    _check_frames(config, tracklets)
    by_split, excluded = _cached_by_split(config.data, cache, tracklets, splits, log)
    train = by_split.get("train", [])
    validates = config.train.select == "val" or config.train.fusion_calibration == "val"
    val_pids = _validation_pids(config, train) if validates and "train" in splits else []
    val = [t for t in train if t.pid in set(val_pids)]
    train = [t for t in train if t.pid not in set(val_pids)]

    class_pids = sorted({t.pid for t in train})
    class_index = {pid: i for i, pid in enumerate(class_pids)}
    clothes_index = {c: i for i, c in enumerate(sorted({t.clothes for t in tracklets}))}
    pose = config.model.pose if needs_joints else None

    def make(items):
        return _sources(items, cache, pose, class_index, clothes_index)

    result = DataSplits(
        train=make(train),
        query=make(by_split.get("query", [])),
        gallery=make(by_split.get("gallery", [])),
        val=make(val),
        class_pids=class_pids,
        val_pids=val_pids,
        excluded=excluded,
        skeletons=skeleton_record(config.data.cache, cache.attrs),
    )
    cache.close()
    return result

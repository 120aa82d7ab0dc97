"""`asgl-pipeline preprocess`: videos → normalised 14-joint 3D skeletons in one HDF5 cache.

Per tracklet: `pipeline.extraction.extract_tracklet` (MediaPipe pose, 33 → 14 joints, gaps
filled, normalised). A skeleton dataset (`skeletons`, `ucalgary`: joints in files, no frames) has
its files as its only pose source (`pose_source = "skeletons"`, set here for it): each sequence is
read in this process (`extraction.extract_sequence`), optionally through a joints transform.

Parallelism (`pipeline.extraction.extract_in_workers` over the pool of `pipeline.workers`): joblib
workers (local processes, or a Dask cluster with `backend = "dask"`) each take a batch of
tracklets with their own `PoseEstimator`; the batches stream back unordered to this process, the
single writer (`pipeline.cache.CacheWriter`), which seals each batch into a part file, so a killed
run keeps every finished batch and a re-run does only the rest. Only a bounded number of batches
is ever in flight, so memory does not grow with the dataset.

Bad input never stops the run and is never cached as zeros: every problem is a row
(reason, path, key) in `<cache stem>.failures.csv` next to the cache (rewritten by every run, so it
always describes the current cache); `strict = true` turns any row into a non-zero exit after the
rest has been processed. The resolved configuration goes to `<cache stem>.config.toml`.
Tracklets that failed are not cached, so the next run tries them again (the input may be fixed).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from pipeline import skeleton
from pipeline.cache import (
    CacheWriter,
    SkeletonCache,
    config_path,
    failures_path,
    file_attributes,
)
from pipeline.config import save_config
from pipeline.extraction import extract_in_workers, sequence_batch
from pipeline.groundtruth import IMAGE_TRUTH, POSE_SOURCES, check_root
from pipeline.layouts import (
    SKELETON_DATASETS,
    Failure,
    Tracklet,
    estimated_frame_count,
    load_tracklets,
    write_failures,
)
from pipeline.pose import BUNDLED_COMPLEXITY
from pipeline.transforms import load_transform
from pipeline.workers import BACKENDS, worker_count
from stages import StageError

SEQUENCES_PER_BATCH = 64  # skeleton files: one part file per batch, no worker pool


@dataclass
class PreprocessSummary:
    cache: str
    failures_csv: str
    tracklets: int  # selected (after --limit) and loadable
    cached: int  # of those, now in the cache
    processed: int  # extracted by this run
    skipped: int  # already in the cache before this run
    failed: int  # tracklets that could not be cached
    failures: int  # failure rows (tracklets, frames, split lines)
    frames: int  # frames of the cached tracklets
    detection_rate: float  # detected / frames over the cached tracklets
    run_frames: int  # frames decoded by this run
    wall_seconds: float
    frames_per_second: float  # this run's frames / wall time


def resolve_pose_source(config):
    """The config with a skeleton dataset's only pose source, its files ("skeletons"); a
    StageError for a source the dataset cannot have."""
    pre, dataset = config.preprocess, config.data.dataset
    if dataset not in SKELETON_DATASETS:
        if pre.pose_source == "skeletons" or pre.joints_transform:
            raise StageError(
                f"--dataset {dataset} has frames: --pose-source skeletons and "
                "preprocess.joints_transform are for skeleton datasets "
                f"({', '.join(SKELETON_DATASETS)})"
            )
        return config
    if pre.pose_source == "groundtruth":
        raise StageError(
            f"--dataset {dataset} holds skeleton files, no synthetic ground truth — drop "
            "--pose-source groundtruth (its pose source is its files)"
        )
    return dataclasses.replace(config, preprocess=dataclasses.replace(pre, pose_source="skeletons"))


def _check(config) -> None:
    pre = config.preprocess
    if pre.normalisation not in skeleton.NORMALISATION_MODES:
        raise StageError(
            f"preprocess.normalisation = {pre.normalisation!r} is unknown — use one of "
            f"{', '.join(skeleton.NORMALISATION_MODES)}"
        )
    if pre.pose_source not in POSE_SOURCES:
        raise StageError(
            f"preprocess.pose_source = {pre.pose_source!r} is unknown — use one of "
            f"{', '.join(POSE_SOURCES)}"
        )
    if pre.pose_source == "groundtruth":
        try:
            check_root(config.data.root)
        except ValueError as error:
            raise StageError(str(error)) from None
    if pre.model_complexity != BUNDLED_COMPLEXITY:
        raise StageError(
            f"preprocess.model_complexity = {pre.model_complexity}: only {BUNDLED_COMPLEXITY} is "
            "bundled with mediapipe 0.10.21 (others need a download) — set it to 1"
        )
    if pre.backend not in BACKENDS:
        raise StageError(
            f"preprocess.backend = {pre.backend!r} is unknown — use one of {', '.join(BACKENDS)}"
        )
    if pre.backend == "dask" and not pre.scheduler:
        raise StageError("--backend dask needs --scheduler ADDRESS, e.g. tcp://127.0.0.1:8786")
    if pre.limit < 0 or pre.workers < 0:
        raise StageError("--limit and --workers must be ≥ 0 (0 = all tracklets / all cores)")


def _results(todo: list[Tracklet], sizes: list[int], config, workers: int):
    """Batch results as they finish: skeleton files read here, frames through the worker pool
    (`extraction.extract_in_workers`: joblib's local processes or Dask)."""
    pre = config.preprocess
    if pre.pose_source == "skeletons":  # reading a file takes milliseconds: no pool needed
        transform = _transform(pre)
        for start in range(0, len(todo), SEQUENCES_PER_BATCH):
            batch = todo[start : start + SEQUENCES_PER_BATCH]
            try:
                yield sequence_batch(batch, config.data.dataset, pre.normalisation, transform)
            except ValueError as error:  # the transform broke its contract
                raise StageError(
                    f"preprocess.joints_transform {pre.joints_transform}: {error}"
                ) from None
        return

    yield from extract_in_workers(todo, sizes, pre, workers)


def _transform(pre):
    try:
        return load_transform(pre.joints_transform, pre.transform_args)
    except ValueError as error:
        raise StageError(f"{error} — nothing was cached") from None


def _transform_attribute(pre) -> str:
    """What the cache records (and fingerprints) of the joints transform."""
    return " ".join(part for part in (pre.joints_transform, pre.transform_args) if part)


def _recorded_frame_failures(cache: SkeletonCache, tracklets: list[Tracklet]) -> list[Failure]:
    """Unreadable-frame rows of tracklets cached by an earlier run (their indices are stored)."""
    rows = []
    for tracklet in tracklets:
        for index in cache.meta(tracklet.key).get("unreadable", ()):
            where = tracklet.frames[index] if tracklet.frames else f"{tracklet.source}#{index}"
            rows.append(Failure("unreadable frame", where, tracklet.key))
    return rows


def _extract_missing(
    config, tracklets: list[Tracklet], failures: list[Failure], log: Callable[[str], None]
) -> tuple[list[Tracklet], int, int]:
    """Pose-extract the tracklets the cache lacks (streamed into it batch by batch); returns the
    tracklets that were already cached, and this run's tracklet and frame counts."""
    pre, data = config.preprocess, config.data
    attrs = file_attributes(
        data.dataset,
        data.root,
        pre.normalisation,
        pre.model_complexity,
        pre.pose_source,
        _transform_attribute(pre),
        IMAGE_TRUTH if pre.pose_source == "groundtruth" else "",
    )
    workers = worker_count(pre.workers)
    processed = run_frames = 0
    with CacheWriter(Path(data.cache), attrs, overwrite=pre.overwrite) as writer:
        if writer.damaged():
            log(
                f"preprocess: {len(writer.damaged())} damaged tracklet(s) in {data.cache} "
                f"(first: {writer.damaged()[0]}) will be extracted again"
            )
        todo = [t for t in tracklets if not writer.has(t.key)]
        done_before = [t for t in tracklets if writer.has(t.key)]
        sizes = [estimated_frame_count(t) for t in todo]
        where = f"Dask at {pre.scheduler}" if pre.backend == "dask" else f"{workers} worker(s)"
        if pre.pose_source == "skeletons":
            where = "this process (skeleton files)"
        log(
            f"preprocess: {len(tracklets)} tracklets from {data.root} ({data.dataset}); "
            f"{len(done_before)} already in {Path(data.cache)}; {len(todo)} to do, ~{sum(sizes)} "
            f"frames, on {where}"
        )
        if todo:
            with tqdm(total=sum(sizes), unit="frame", desc="pose", mininterval=1.0) as bar:
                for batch in _results(todo, sizes, config, workers):
                    for extraction in batch:
                        if extraction.arrays is not None:
                            writer.write(extraction.key, extraction.arrays, extraction.attrs)
                        failures.extend(extraction.failures)
                        processed += 1
                        run_frames += extraction.frames
                    writer.flush()
                    bar.update(sum(e.frames for e in batch))
    return done_before, processed, run_frames


def run(config, log: Callable[[str], None] = print) -> PreprocessSummary:
    config = resolve_pose_source(config)
    _check(config)
    if config.preprocess.pose_source == "skeletons":
        _transform(config.preprocess)  # a bad transform is refused before anything is written
    started = time.perf_counter()
    pre, data = config.preprocess, config.data
    tracklets, failures = load_tracklets(data.dataset, data.root, data.manifest)
    if pre.limit:
        tracklets = tracklets[: pre.limit]
    cache_path = Path(data.cache)
    done_before, processed, run_frames = _extract_missing(config, tracklets, failures, log)

    with SkeletonCache(cache_path) as cache:
        failures.extend(_recorded_frame_failures(cache, done_before))
        metas = [cache.meta(t.key) for t in tracklets if t.key in cache]
    failures_csv = failures_path(cache_path)
    write_failures(failures_csv, failures)
    save_config(config, config_path(cache_path))

    wall = time.perf_counter() - started
    frames = sum(m["frames"] for m in metas)
    detected = sum(m["frames"] * m["detection_rate"] for m in metas)
    summary = PreprocessSummary(
        cache=str(cache_path),
        failures_csv=str(failures_csv),
        tracklets=len(tracklets),
        cached=len(metas),
        processed=processed,
        skipped=len(done_before),
        failed=len(tracklets) - len(metas),
        failures=len(failures),
        frames=frames,
        detection_rate=detected / frames if frames else 0.0,
        run_frames=run_frames,
        wall_seconds=wall,
        frames_per_second=run_frames / wall if wall > 0 else 0.0,
    )
    log(_summary_line(summary))
    if pre.strict and failures:
        raise StageError(
            f"{len(failures)} input problem(s) with --strict (first: {failures[0].reason}: "
            f"{failures[0].path}) — see {failures_csv}"
        )
    return summary


def _summary_line(s: PreprocessSummary) -> str:
    return (
        f"preprocess: {s.cached}/{s.tracklets} tracklets cached in {s.cache} ({s.processed} new, "
        f"{s.skipped} already there), {s.frames} frames, detection {100 * s.detection_rate:.1f} %, "
        f"{s.failures} failure(s) → {s.failures_csv}; {s.wall_seconds:.1f} s, "
        f"{s.frames_per_second:.1f} frames/s ({s.run_frames} frames this run)"
    )

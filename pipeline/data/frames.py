"""Frames as the model sees them, and the frame cache that keeps them decoded.

Every training step used to decode its clips' JPEG files, resize them and normalise them; the
model saw the same few thousand frames every epoch and every ablation variant again. The frame
cache keeps each frame of a data set decoded and resized (uint8 RGB, `cv2.resize` INTER_LINEAR,
exactly what the decoding path computes before normalising), written once per set and input
size, memory-mapped by every reader. Normalisation is the same function on either path, so a
clip read from the cache is bit for bit the clip decoded from its files (tested).

Files, in `data.frame_cache` (default: `<skeleton cache stem>.frames/` beside the skeleton
cache): `frames-<H>x<W>-<fingerprint>.npy` (all rows, (N, H, W, 3) uint8) and its `.json` index
(tracklet key → first row and count), written after it, so an index names complete pixels only.
The fingerprint hashes the input size, the resize rule, OpenCV's version and every frame file's
path, size and modification time: a changed frame means another name, a rebuild, and the stale
files deleted. Rows are laid out in sorted key order, so two processes that build the same cache
at once write the same bytes. Only frame-folder tracklets are cached; video files, and a
tracklet none of whose frames decodes, are decoded as before when read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import FrameReadError
from pipeline.io import FileLock, atomic_write, atomic_write_json, remove_stale_temporaries
from pipeline.layouts import Tracklet, load_tracklets, read_frames
from pipeline.workers import exit_with_parent, make_batches, stream_unordered, worker_count

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
FRAME_CACHE_SCHEMA = 1
RESIZE_RULE = "cv2.resize INTER_LINEAR, BGR to RGB"
IN_PROCESS_FRAMES = 5000  # ≈ 2 s of decoding: below it, starting worker processes costs more


def resized_rgb(frames_bgr: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB: each BGR frame resized to height × width (INTER_LINEAR)."""
    import cv2

    out = np.empty((len(frames_bgr), height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames_bgr):
        out[i] = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)[..., ::-1]
    return out


def normalised(rgb: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB → (T, 3, H, W) float32, ImageNet-normalised. The one place frames
    are normalised, whether they were decoded now or read from the frame cache."""
    scaled = (rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


def load_frames(tracklet: Tracklet, indices: list[int], height: int, width: int) -> np.ndarray:
    """(T, 3, H, W) float32 frames at `indices`, decoded from their files: resized, RGB,
    ImageNet-normalised."""
    return normalised(resized_rgb(read_frames(tracklet, indices), height, width))


@dataclass(frozen=True)
class FrameCache:
    """A written frame cache: memory-mapped pixels and where each tracklet's rows are."""

    path: Path
    array: np.ndarray  # (N, H, W, 3) uint8, memory-mapped read-only
    rows: dict[str, tuple[int, int]]  # key → (first row, frame count)

    def pixels(self, key: str) -> np.ndarray | None:
        """The tracklet's (T, H, W, 3) uint8 RGB frames (a view); None when not cached."""
        if key not in self.rows:
            return None
        start, count = self.rows[key]
        return self.array[start : start + count]


def frame_cache_folder(data_cfg) -> Path:
    """`data.frame_cache`, or `<skeleton cache stem>.frames/` beside the skeleton cache."""
    if data_cfg.frame_cache:
        return Path(data_cfg.frame_cache)
    cache = Path(data_cfg.cache)
    return cache.parent / f"{cache.stem}.frames"


def fingerprint(tracklets: Sequence[Tracklet], height: int, width: int) -> str:
    """16 hex digits over the input size, the resize rule and every frame file's identity."""
    import cv2

    digest = hashlib.sha256()
    digest.update(f"{FRAME_CACHE_SCHEMA}|{height}x{width}|{RESIZE_RULE}|{cv2.__version__}".encode())
    for tracklet in sorted(tracklets, key=lambda t: t.key):
        digest.update(f"\n{tracklet.key}".encode())
        for path in tracklet.frames:
            stat = os.stat(path)
            digest.update(f"|{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _layout(tracklets: Sequence[Tracklet]) -> dict[str, tuple[int, int]]:
    """Rows in sorted key order: deterministic, so concurrent builders write the same bytes."""
    rows, start = {}, 0
    for tracklet in sorted(tracklets, key=lambda t: t.key):
        rows[tracklet.key] = (start, len(tracklet.frames))
        start += len(tracklet.frames)
    return rows


def _files(folder: Path, height: int, width: int, print_: str) -> tuple[Path, Path]:
    stem = f"frames-{height}x{width}-{print_}"
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def _read_index(pixels: Path, index: Path, height: int, width: int) -> FrameCache | None:
    """The cache these files hold, or None when either is missing, unreadable or they disagree
    (a build killed between the two writes, a damaged file): it is then built again."""
    try:
        info = json.loads(index.read_text())
        array = np.load(pixels, mmap_mode="r")
        rows = {key: (int(start), int(count)) for key, (start, count) in info["tracklets"].items()}
        expected = (int(info["total_rows"]), height, width, 3)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if array.shape != expected or array.dtype != np.uint8:
        return None
    return FrameCache(pixels, array, rows)


def _decode_batch(
    batch: list[Tracklet], height: int, width: int, parent_pid: int | None
) -> list[tuple[str, np.ndarray | None]]:
    """A worker's task: each tracklet's frames resized (None when no frame decodes)."""
    import cv2

    exit_with_parent(parent_pid)
    cv2.setNumThreads(1)  # the workers are the parallelism
    out = []
    for tracklet in batch:
        try:
            out.append((tracklet.key, resized_rgb(read_frames(tracklet), height, width)))
        except FrameReadError:
            out.append((tracklet.key, None))
    return out


def _write_pixels(
    path: Path, tracklets: list[Tracklet], rows: dict, height: int, width: int, workers: int
) -> list[str]:
    """Decode every tracklet in the worker pool into a new `.npy` at `path` (temp + rename);
    returns the keys none of whose frames decodes (their rows stay zero and are not indexed)."""
    total = sum(count for _, count in rows.values())
    unreadable: list[str] = []

    def write(tmp: Path) -> None:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(total, height, width, 3)
        )
        sizes = [len(t.frames) for t in tracklets]
        for batch in stream_unordered(
            _decode_batch,
            lambda slots: make_batches(tracklets, sizes, slots),
            (height, width),
            workers=workers,
        ):
            for key, pixels in batch:
                if pixels is None:
                    unreadable.append(key)
                else:
                    start, count = rows[key]
                    out[start : start + count] = pixels
        out.flush()
        del out

    atomic_write(path, write)
    return sorted(unreadable)


def _remove_stale(folder: Path, height: int, width: int, keep: tuple[Path, Path]) -> None:
    for old in folder.glob(f"frames-{height}x{width}-*"):
        if old not in keep and old.suffix in (".npy", ".json"):
            old.unlink(missing_ok=True)


def open_frame_cache(
    data_cfg, height: int, width: int, workers: int = 1, log: Callable[[str], None] = print
) -> FrameCache | None:
    """The data set's frame cache at this input size, built first when it is missing or stale;
    None (frames are then decoded as they are read) when it would exceed
    `data.frame_cache_gb` or that is 0."""
    if data_cfg.frame_cache_gb <= 0:
        return None
    tracklets, _ = load_tracklets(data_cfg.dataset, data_cfg.root, data_cfg.manifest)
    tracklets = [t for t in tracklets if t.frames and not t.video]
    rows = _layout(tracklets)
    total = sum(count for _, count in rows.values())
    size_gb = total * height * width * 3 / 1e9
    if not tracklets or size_gb > data_cfg.frame_cache_gb:
        if tracklets:
            log(
                f"frame cache: {total} frames at {height}x{width} would take {size_gb:.1f} GB, "
                f"more than data.frame_cache_gb = {data_cfg.frame_cache_gb:g}; frames are decoded "
                "from their files instead (raise it to cache them)"
            )
        return None
    folder = frame_cache_folder(data_cfg)
    pixels, index = _files(folder, height, width, fingerprint(tracklets, height, width))
    cache = _read_index(pixels, index, height, width)
    if cache is not None:
        return cache
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / ".build.lock", "asgl-pipeline frame cache")
    if not lock.acquire():
        log(
            f"frame cache: {folder} is being built by another process ({lock.held_by()}); "
            "frames are decoded from their files this time"
        )
        return None
    try:
        return _build(tracklets, rows, (pixels, index), height, width, workers, log)
    finally:
        lock.release()


def _build(tracklets, rows, files, height, width, workers, log) -> FrameCache:
    """Under the build lock: pixels, then the index that makes them valid, then stale files
    (older fingerprints of this size, temporaries of a killed build) deleted."""
    pixels, index = files
    remove_stale_temporaries(pixels.parent, "frames-*")
    started = time.perf_counter()
    total = sum(count for _, count in rows.values())
    # A small set decodes in this process in less time than worker processes take to start.
    workers = workers if total > IN_PROCESS_FRAMES else 1
    unreadable = set(_write_pixels(pixels, tracklets, rows, height, width, workers))
    kept = {key: span for key, span in rows.items() if key not in unreadable}
    atomic_write_json(
        index,
        {
            "schema": FRAME_CACHE_SCHEMA,
            "resize": RESIZE_RULE,
            "height": height,
            "width": width,
            "total_rows": total,
            "tracklets": kept,
            "undecodable": sorted(unreadable),
        },
    )
    _remove_stale(pixels.parent, height, width, keep=(pixels, index))
    log(
        f"frame cache: {total} frames of {len(tracklets)} tracklets decoded and resized to "
        f"{height}x{width} in {time.perf_counter() - started:.1f} s "
        f"({total * height * width * 3 / 1e9:.2f} GB) → {pixels}"
    )
    return _read_index(pixels, index, height, width)


def with_pixels(sources: list, cache: FrameCache | None) -> list:
    """Clip sources with their cached frames attached (`ClipSource.pixels`), when cached."""
    if cache is None:
        return sources
    return [dataclasses.replace(s, pixels=cache.pixels(s.key)) for s in sources]


def attach_frame_cache(config, splits, log: Callable[[str], None] = print):
    """`splits` (a `DataSplits`) with every source's cached frames attached, the frame cache
    built first when needed (decoding with `preprocess.workers` processes); unchanged when the
    model sees no frames or the cache is off or too large."""
    if not config.model.use_appearance:
        return splits
    cache = open_frame_cache(
        config.data,
        config.train.height,
        config.train.width,
        worker_count(config.preprocess.workers),
        log,
    )
    if cache is None:
        return splits
    names = ("train", "query", "gallery", "val")
    return dataclasses.replace(splits, **{n: with_pixels(getattr(splits, n), cache) for n in names})

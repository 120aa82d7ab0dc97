"""The HDF5 skeleton cache (SPEC §4): one file per dataset, one group per tracklet.

Crash safety without trusting HDF5 to survive a SIGKILL mid-write: the single writer puts every
batch of finished tracklets into its own small part file (`<cache>.parts/part-NNNNNN.h5`, written
to a temporary name and renamed), and on `close()` merges the previous cache and the parts into a
new cache file, again through a temporary name. So the cache file is only ever complete or absent,
a part is only ever complete or absent, and a killed run loses at most the batches in flight; the
next run skips every tracklet found in the cache or a part.

Per tracklet group (name = escaped key): datasets `world33 (T,33,3)`, `image33 (T,33,3)`,
`visibility (T,33)`, `present (T,)`, `joints14 (T,14,3)`, `joints14_2d (T,14,2)`, and attributes
pid, clothes, camera, split, source, frames, detection_rate, frame_size (h, w). File attributes:
schema_version, mediapipe_version, model_complexity, normalisation, dataset, root, pose_source
(mediapipe | groundtruth | skeletons), joints_transform (skeleton datasets: the transform applied
before caching, "" for none), groundtruth_2d ("image" where a ground-truth cache's 2D joints are
the true joints in the frames), fingerprint.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import h5py
import numpy as np

from pipeline.errors import CacheError, DamagedTrackletError
from pipeline.io import FileLock, atomic_write, remove_stale_temporaries
from pipeline.pose import mediapipe_version

SCHEMA_VERSION = 1
ARRAY_FIELDS = ("world33", "image33", "visibility", "present", "joints14", "joints14_2d")
# The fields a model of each `model.pose` reads, joined along the coordinates: 3D joints, image
# x, y (the Table 5 ablation), or both (beyond the paper: what the image keeps beside the lift).
POSE_FIELDS = {"3d": ("joints14",), "2d": ("joints14_2d",), "3d+2d": ("joints14", "joints14_2d")}
FIELD_CHANNELS = {"joints14": 3, "joints14_2d": 2}
# File attributes whose change makes a cache stale (everything but the fingerprint itself).
FINGERPRINT_FIELDS = (
    "schema_version",
    "mediapipe_version",
    "model_complexity",
    "normalisation",
    "dataset",
    "root",
    "pose_source",
    "joints_transform",
    "groundtruth_2d",
)
# Fields added after schema 1 enter the hash only away from their default, so the caches built
# before they existed keep their fingerprint (and a missing attribute reads as the default).
LATER_FIELD_DEFAULTS = {"pose_source": "mediapipe", "joints_transform": "", "groundtruth_2d": ""}
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
# HDF5 1.10 file format: single-chunk datasets need no B-tree and object headers are compact,
# which makes a cache of short tracklets ~2.5x smaller than the 1.8 format (readable by HDF5 ≥ 1.10).
LIBVER = ("v110", "v110")


# What h5py raises for damaged bytes, depending on where they are: "filter returned failure",
# "incorrect metadata checksum" (KeyError), "Link iteration failed" (RuntimeError), …
H5_DAMAGE = (OSError, RuntimeError, KeyError, ValueError)


def _h5_reason(error: BaseException) -> str:
    """HDF5's reason without h5py's wrapping: "Can't … read data (filter returned failure …)"."""
    text = str(error.args[0] if isinstance(error, KeyError) and error.args else error).strip()
    innermost = re.search(r"\(([^()]+)\)\)*\s*$", text)
    return innermost.group(1) if innermost else text or type(error).__name__


def _damaged(path: Path, key: str, error: BaseException) -> DamagedTrackletError:
    return DamagedTrackletError(
        f"skeleton cache {path} is damaged: tracklet {key} cannot be read ({_h5_reason(error)})"
        f" — {repair_advice(path)}",
        key,
    )


def rebuild_advice(path: str | Path) -> str:
    return f"rebuild it: re-run `asgl-pipeline preprocess` for {path} with `preprocess.overwrite`"


def repair_advice(path: str | Path) -> str:
    """For damaged tracklets in a readable cache: preprocess extracts exactly those again."""
    return (
        f"re-run `asgl-pipeline preprocess` for {path} (same settings) to extract the "
        "damaged tracklets again, or rebuild it all with `preprocess.overwrite`"
    )


def escape_key(key: str) -> str:
    """A tracklet key as an HDF5 group name: '/' (and '%') percent-encoded, so keys stay flat."""
    return quote(key, safe="")


def unescape_key(name: str) -> str:
    return unquote(name)


def parts_dir(cache: str | Path) -> Path:
    """Where a run keeps finished batches until it merges them into the cache."""
    cache = Path(cache)
    return cache.with_name(cache.name + ".parts")


def failures_path(cache: str | Path) -> Path:
    """`cache/skeletons/x.h5` → `cache/skeletons/x.failures.csv` (preprocess's failure rows)."""
    return Path(cache).with_suffix(".failures.csv")


def config_path(cache: str | Path) -> Path:
    """`cache/skeletons/x.h5` → `cache/skeletons/x.config.toml` (the configuration that built it)."""
    return Path(cache).with_suffix(".config.toml")


def file_attributes(
    dataset: str,
    root: str | Path,
    normalisation: str,
    model_complexity: int,
    pose_source: str = "mediapipe",
    joints_transform: str = "",
    groundtruth_2d: str = "",
) -> dict[str, Any]:
    """The file attributes of a cache built from these inputs, fingerprint included
    (`joints_transform`: "module:function" and its JSON arguments, "" for none;
    `groundtruth_2d`: "image" where a ground-truth cache's 2D joints are the true joints in the
    frames, "" otherwise — older ground-truth caches hold an orthographic view and go stale)."""
    attrs: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "mediapipe_version": mediapipe_version(),
        "model_complexity": int(model_complexity),
        "normalisation": normalisation,
        "dataset": dataset,
        "root": str(Path(root).absolute()),
        "pose_source": pose_source,
        "joints_transform": joints_transform,
        "groundtruth_2d": groundtruth_2d,
    }
    attrs["fingerprint"] = fingerprint(attrs)
    return attrs


def fingerprint(attrs: dict[str, Any]) -> str:
    """Short hash of the parameters and inputs a cache depends on."""
    fields = {k: attribute(attrs, k) for k in FINGERPRINT_FIELDS}
    fields = {k: v for k, v in fields.items() if LATER_FIELD_DEFAULTS.get(k, object()) != v}
    payload = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def attribute(attrs: dict[str, Any], name: str) -> Any:
    """A file attribute, with the default of a field added later when an old cache lacks it."""
    return attrs.get(name, LATER_FIELD_DEFAULTS.get(name))


def _plain(value: Any) -> Any:
    """HDF5 attribute → Python value (str, int, float, bool or tuple)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return tuple(v.item() for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_attrs(node) -> dict[str, Any]:
    return {name: _plain(value) for name, value in node.attrs.items()}


def _open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise CacheError(
            f"{path} is not a readable HDF5 skeleton cache ({error}) — delete it or re-run "
            "`asgl-pipeline preprocess` with `preprocess.overwrite`"
        ) from None


def _index(path: Path, handle: h5py.File) -> tuple[dict[str, Any], list[str]]:
    """A file's attributes and group names; CacheError when its metadata is damaged."""
    try:
        return _read_attrs(handle), list(handle)
    except H5_DAMAGE as error:
        raise CacheError(
            f"skeleton cache {path} is damaged: its index cannot be read ({_h5_reason(error)})"
            f" — {rebuild_advice(path)}"
        ) from None


class CacheWriter:
    """Single-process writer. `write()` buffers a tracklet, `flush()` seals the buffer into a part
    file, `close()` (or leaving the `with` block normally) merges everything into the cache.

    An existing cache or part with another fingerprint raises `CacheError` unless
    `overwrite=True`, which starts from nothing. A lock file keeps two writers apart.
    """

    def __init__(self, path: str | Path, file_attrs: dict[str, Any], overwrite: bool = False):
        self.path = Path(path)
        self.file_attrs = dict(file_attrs)
        if "fingerprint" not in self.file_attrs:
            self.file_attrs["fingerprint"] = fingerprint(self.file_attrs)
        self.parts = parts_dir(self.path)
        self._buffer: list[tuple[str, dict[str, np.ndarray], dict[str, Any]]] = []
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(self.path.with_name(self.path.name + ".lock"), "preprocess")
        if not self._lock.acquire():
            raise CacheError(
                f"another process is writing {self.path} ({self._lock.held_by() or 'unknown'}) "
                "— wait for it to finish"
            )
        try:
            self._remove_temporaries()
            if overwrite:
                self.path.unlink(missing_ok=True)
                shutil.rmtree(self.parts, ignore_errors=True)
            self._done: set[str] = set()
            # Groups whose bytes are damaged: left out of the merge and so extracted again.
            self._damaged: dict[Path, set[str]] = {}
            for source in self._sources():
                with _open_h5(source) as handle:
                    attrs, names = _index(source, handle)
                    self._check_fingerprint(source, attrs)
                    self._damaged[source] = {n for n in names if not _readable(handle, n)}
                    self._done.update(
                        unescape_key(n) for n in names if n not in self._damaged[source]
                    )
        except BaseException:
            self._release()
            raise

    # -- state -----------------------------------------------------------------------------
    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.h5")) if self.parts.is_dir() else []

    def _sources(self) -> list[Path]:
        return ([self.path] if self.path.exists() else []) + self._part_files()

    def _remove_temporaries(self) -> None:
        """Temporary files a killed run left behind (never renamed, so never valid)."""
        remove_stale_temporaries(self.path.parent, self.path.name)  # other caches may be there
        remove_stale_temporaries(self.parts)

    def _check_fingerprint(self, source: Path, attrs: dict[str, Any]) -> None:
        if attrs.get("fingerprint") == self.file_attrs["fingerprint"]:
            return
        changed = [
            f"{name} {attribute(attrs, name)!r} → {attribute(self.file_attrs, name)!r}"
            for name in FINGERPRINT_FIELDS
            if attribute(attrs, name) != attribute(self.file_attrs, name)
        ]
        raise CacheError(
            f"skeleton cache {self.path} was built with other settings ({'; '.join(changed) or 'fingerprint differs'}) "
            "— rebuild it (`preprocess.overwrite`), or choose another `data.cache`"
        )

    def damaged(self) -> list[str]:
        """Tracklets found damaged in the cache or its parts (to be extracted again)."""
        names = set().union(*self._damaged.values()) if self._damaged else set()
        return sorted(unescape_key(name) for name in names)

    def has(self, key: str) -> bool:
        return key in self._done

    def keys(self) -> set[str]:
        return set(self._done)

    # -- writing ---------------------------------------------------------------------------
    def write(self, key: str, arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
        missing = [name for name in ARRAY_FIELDS if name not in arrays]
        if missing:
            raise ValueError(f"tracklet {key}: arrays {missing} missing")
        self._buffer.append((key, arrays, attrs))
        self._done.add(key)

    def flush(self) -> Path | None:
        """Seal the buffered tracklets into a new part file; returns its path (None if empty)."""
        if not self._buffer:
            return None
        self.parts.mkdir(parents=True, exist_ok=True)
        existing = self._part_files()
        number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
        buffer, self._buffer = self._buffer, []

        def fill_part(handle: h5py.File) -> None:
            handle.attrs.update(self.file_attrs)
            for key, arrays, attrs in buffer:
                _write_group(handle, key, arrays, attrs)

        return _write_h5(self.parts / f"part-{number:06d}.h5", fill_part)

    def close(self) -> None:
        """Flush, then merge the previous cache and all parts into a new cache file."""
        if self._closed:
            return
        try:
            self.flush()
            parts = self._part_files()
            if parts or not self.path.exists():
                self._merge(parts)
            shutil.rmtree(self.parts, ignore_errors=True)
        finally:
            self._release()

    def _merge(self, parts: list[Path]) -> None:
        sources = ([self.path] if self.path.exists() else []) + parts

        def fill_cache(out: h5py.File) -> None:
            out.attrs.update(self.file_attrs)
            for source in sources:
                with h5py.File(source, "r") as handle:
                    for name in handle:
                        # HDF5 copies chunks without decoding them: a damaged group is skipped
                        # here, or it would pass into the new cache unnoticed.
                        if name not in out and name not in self._damaged.get(source, ()):
                            handle.copy(handle[name], out, name=name)

        _write_h5(self.path, fill_cache)

    def _release(self) -> None:
        self._closed = True
        self._lock.release()

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        # Interrupted: keep what is finished as a part, leave merging to the next run.
        try:
            self.flush()
        finally:
            self._release()


def _readable(handle: h5py.File, name: str) -> bool:
    """Whether every array and attribute of a group decodes (HDF5 checks metadata checksums
    and the gzip streams' own on reading). Measured ~8 ms per tracklet on the shared 2-core
    machine (0.8 s for the 96-tracklet demo cache), paid once per preprocess start."""
    try:
        group = handle[name]
        _read_attrs(group)
        for field in ARRAY_FIELDS:
            group[field][()]
    except H5_DAMAGE:
        return False
    return True


def _write_h5(path: Path, fill: Callable[[h5py.File], None]) -> Path:
    """Build an HDF5 file in memory with `fill(handle)`, then write its bytes atomically.

    HDF5 left to write a file itself reports a failed write (a full disk) only from destructors,
    as ignored exceptions, and then crashes at close: preprocess segfaulted on a full disk. In
    memory it cannot fail that way, and the one plain write fails with an ordinary ENOSPC. Peak
    memory is the file's size (a part is a few MB; a merged cache ~1 KB per frame)."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", libver=LIBVER) as handle:
        fill(handle)
    image = buffer.getbuffer()
    return atomic_write(path, lambda tmp: tmp.write_bytes(image))


def _write_group(handle: h5py.File, key: str, arrays: dict[str, np.ndarray], attrs: dict) -> None:
    group = handle.create_group(escape_key(key))
    for name in ARRAY_FIELDS:
        data = np.ascontiguousarray(arrays[name])
        # One chunk per array: whole-array reads, and no per-frame objects in the file.
        group.create_dataset(
            name, data=data, chunks=data.shape if data.size else None, **COMPRESSION
        )
    for name, value in attrs.items():
        group.attrs[name] = value


class SkeletonCache:
    """Read-only view of a finished cache. Opens the file lazily, and again in a forked child
    (DataLoader workers), since an h5py handle must not cross a fork."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            hint = (
                " (an interrupted run left parts: re-run it to finish)"
                if parts_dir(self.path).is_dir()
                else ""
            )
            raise CacheError(
                f"no skeleton cache at {self.path}{hint} — build it with `asgl-pipeline "
                "preprocess` first"
            )
        self._handle: h5py.File | None = None
        self._pid = -1
        self.attrs, names = _index(self.path, self._file())
        self._names = {unescape_key(name): name for name in names}

    def _file(self) -> h5py.File:
        if self._handle is None or self._pid != os.getpid():
            self._handle = _open_h5(self.path)
            self._pid = os.getpid()
        return self._handle

    def keys(self) -> list[str]:
        return sorted(self._names)

    def __contains__(self, key: str) -> bool:
        return key in self._names

    def __len__(self) -> int:
        return len(self._names)

    def _group(self, key: str) -> h5py.Group:
        if key not in self._names:
            raise KeyError(f"tracklet {key!r} is not in the skeleton cache {self.path}")
        try:
            return self._file()[self._names[key]]
        except H5_DAMAGE as error:
            raise _damaged(self.path, key, error) from None

    def meta(self, key: str) -> dict[str, Any]:
        """pid, clothes, camera, split, source, frames, detection_rate, frame_size (h, w), …
        Raises DamagedTrackletError when the tracklet's bytes are damaged."""
        group = self._group(key)
        try:
            return _read_attrs(group)
        except H5_DAMAGE as error:
            raise _damaged(self.path, key, error) from None

    def read(
        self, key: str, fields: tuple[str, ...] = ("joints14", "present")
    ) -> dict[str, np.ndarray]:
        unknown = [name for name in fields if name not in ARRAY_FIELDS]
        if unknown:
            raise KeyError(f"unknown cache fields {unknown} (known: {', '.join(ARRAY_FIELDS)})")
        group = self._group(key)
        try:
            return {name: group[name][()] for name in fields}
        except H5_DAMAGE as error:
            raise _damaged(self.path, key, error) from None

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None

    def __enter__(self) -> SkeletonCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handle"], state["_pid"] = None, -1  # reopened on first use after unpickling
        return state


def pose_input(arrays: dict[str, np.ndarray], pose: str) -> np.ndarray:
    """(T, 14, C) float32 model input of `pose` from a tracklet's cache arrays."""
    return np.concatenate([np.asarray(arrays[f], np.float32) for f in POSE_FIELDS[pose]], axis=-1)


def pose_x_channels(pose: str) -> tuple[int, ...]:
    """Where the horizontal coordinates sit in the input of `pose` (a mirror negates them)."""
    offsets, start = [], 0
    for name in POSE_FIELDS[pose]:
        offsets.append(start)
        start += FIELD_CHANNELS[name]
    return tuple(offsets)

"""Dataset adapters (SPEC §3): every layout becomes the same `Tracklet` records.

    tracklets, failures = load_tracklets("ccvid", "cache/synthetic")
    frames = read_frames(tracklets[0], indices=[0, 4, 8])     # BGR uint8, as OpenCV reads them

Adapters: `ccvid` (split files, `ccvid.py`), `vccr` (the tree is the split, `vccr.py`) and
`folder` (own videos or frame folders plus a CSV manifest, `folder.py`); two have 3D skeleton
sequences instead of frames (`SKELETON_DATASETS`; their tracklets name a sequence file in
`skeleton`, and `read_sequence` reads it): `skeletons` (.npy / .csv files in our joint order and
axes plus a manifest, `skeletons.py`) and `ucalgary` (real Kinect v2 walks, `ucalgary.py`). Bad
entries do not stop loading: each becomes a `Failure(reason, path)` row; a root or layout that cannot be the named
dataset raises `DatasetLayoutError` with the expected tree.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import DatasetLayoutError, FrameReadError
from pipeline.io import atomic_write_text

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
SPLITS = ("train", "query", "gallery")
SKELETON_DATASETS = ("skeletons", "ucalgary")  # 3D joints per sequence file, no frames
DATASETS = ("ccvid", "vccr", "folder", *SKELETON_DATASETS)


@dataclass(frozen=True)
class Tracklet:
    """One video of one person, in any dataset layout."""

    key: str  # dataset-relative id, unique within the dataset, e.g. "session1/001_01"
    frames: tuple[str, ...]  # absolute frame image paths in order; empty when `video` is set
    video: str  # absolute video path, or ""
    pid: str
    clothes: str  # globally unique: "<pid>/<label>"
    camera: int
    split: str  # train | query | gallery
    skeleton: str = ""  # absolute path of a 3D joint sequence file (skeleton datasets), or ""

    @property
    def source(self) -> str:
        """The folder, video or skeleton sequence file this tracklet comes from."""
        if self.video or self.skeleton:
            return self.video or self.skeleton
        return str(Path(self.frames[0]).parent) if self.frames else ""

    @property
    def has_frames(self) -> bool:
        return bool(self.frames or self.video)


@dataclass(frozen=True)
class Failure:
    """A bad input that was skipped: `reason` is a short fixed phrase, `path` what it concerns."""

    reason: str
    path: str
    key: str = ""  # the tracklet it belongs to, when known


FAILURE_COLUMNS = ("reason", "path", "key")


def write_failures(path: str | Path, failures: Sequence[Failure]) -> None:
    """The failures CSV (reason, path, key), written atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(FAILURE_COLUMNS)
    for failure in failures:
        writer.writerow([failure.reason, failure.path, failure.key])
    atomic_write_text(path, text.getvalue())


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def list_frames(folder: Path) -> tuple[str, ...]:
    """Image files of a tracklet folder, sorted by file name (other files are ignored)."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and is_image(p))
    return tuple(str(folder / name) for name in names)


def clothes_id(pid: str, label: str) -> str:
    """Clothes labels mean something only within one person, so the id is the pair."""
    return f"{pid}/{label}"


def load_tracklets(
    dataset: str, root: str | Path, manifest: str | Path = ""
) -> tuple[list[Tracklet], list[Failure]]:
    """All tracklets of a dataset in its natural order (train, query, gallery), plus the entries
    that could not be used. Raises `DatasetLayoutError` for a wrong root or layout."""
    # The adapters are imported here, not at the top: they import Tracklet and Failure from this
    # package, so a top-level import would be a cycle.
    if dataset == "ccvid":
        from pipeline.layouts import ccvid

        return ccvid.load(root)
    if dataset == "vccr":
        from pipeline.layouts import vccr

        return vccr.load(root)
    if dataset == "folder":
        from pipeline.layouts import folder

        return folder.load(root, manifest)
    if dataset == "skeletons":
        from pipeline.layouts import skeletons

        return skeletons.load(root, manifest)
    if dataset == "ucalgary":
        from pipeline.layouts import ucalgary

        return ucalgary.load(root)
    raise DatasetLayoutError(f"unknown dataset '{dataset}' — choose one of: {', '.join(DATASETS)}")


def read_sequence(dataset: str, tracklet: Tracklet):
    """A skeleton dataset's sequence → `skeletons.Sequence` (joints in our order and axes, metres,
    and the frames that hold the person); `skeletons.SequenceError` says what is wrong."""
    if dataset == "skeletons":
        from pipeline.layouts import skeletons

        return skeletons.read_sequence(tracklet.skeleton)
    if dataset == "ucalgary":
        from pipeline.layouts import ucalgary

        return ucalgary.read_sequence(tracklet.skeleton)
    raise ValueError(f"{dataset!r} has frames, not skeleton sequences ({SKELETON_DATASETS})")


def estimated_frame_count(tracklet: Tracklet) -> int:
    """Frames in a tracklet: exact for frame folders, the container's count for a video (0 when
    OpenCV cannot tell); for progress bars and batching, never for indexing."""
    if not tracklet.video:
        return len(tracklet.frames)
    import cv2

    capture = cv2.VideoCapture(tracklet.video)
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))) if capture.isOpened() else 0
    finally:
        capture.release()


JPEG_END = b"\xff\xd9"  # end-of-image marker
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC


def _complete(path: str, data: bytes) -> bool:
    """A JPEG must end with its end-of-image marker and a PNG with its IEND chunk (zero padding
    allowed after either): a truncated JPEG can otherwise decode, with a warning only, into a
    picture whose missing part is grey, and be taken for a good frame."""
    suffix, data = Path(path).suffix.lower(), data.rstrip(b"\x00")
    if suffix in (".jpg", ".jpeg"):
        return data.endswith(JPEG_END)
    if suffix == ".png":
        return data.endswith(PNG_END)
    return bool(data)


def read_image(path: str) -> np.ndarray | None:
    """A frame image as BGR uint8, or None when it cannot be read, is incomplete or does not
    decode (each such frame is an "unreadable frame" to the caller)."""
    import cv2

    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if not _complete(path, data):
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def iter_frames(tracklet: Tracklet) -> Iterator[tuple[str, np.ndarray | None]]:
    """Yield `(where, frame)` for every frame in order; `frame` is None when that image cannot
    be decoded (corrupt, truncated or zero-byte file). Raises `FrameReadError` for a video
    OpenCV cannot open or that has no frames. Frames are decoded one at a time, so memory stays
    flat."""
    import cv2

    if not tracklet.video:
        for path in tracklet.frames:
            yield path, read_image(path)
        return
    capture = cv2.VideoCapture(tracklet.video)
    try:
        if not capture.isOpened():
            raise FrameReadError(f"cannot open video {tracklet.video}")
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield f"{tracklet.video}#{index}", frame
            index += 1
        if index == 0:
            raise FrameReadError(f"no decodable frame in video {tracklet.video}")
    finally:
        capture.release()


def read_frames(
    tracklet: Tracklet, indices: Sequence[int] | None = None, on_unreadable: str = "nearest"
) -> list[np.ndarray]:
    """Frames of a tracklet (all, or those at `indices`, repeats allowed) as BGR uint8 arrays.

    An undecodable frame is replaced by the nearest decodable one of the tracklet (the skeleton
    cache fills its pose the same way, with `present` False), or raises `FrameReadError` with
    `on_unreadable="raise"`. A video is decoded from its start up to the last index needed.
    """
    if on_unreadable not in ("nearest", "raise"):
        raise ValueError(f"on_unreadable must be 'nearest' or 'raise', got {on_unreadable!r}")
    wanted = None if indices is None else [int(i) for i in indices]
    if tracklet.video:
        last = None if wanted is None else max(wanted, default=-1)
        decoded = []
        for where, frame in iter_frames(tracklet):
            if last is not None and len(decoded) > last:
                break
            decoded.append((where, frame))
        positions = range(len(decoded)) if wanted is None else wanted
        if any(i < 0 or i >= len(decoded) for i in positions):
            raise IndexError(
                f"frame index out of range for {tracklet.video} ({len(decoded)} frames)"
            )
        return [decoded[i][1] for i in positions]

    positions = range(len(tracklet.frames)) if wanted is None else wanted
    cache: dict[int, np.ndarray | None] = {}

    def load(i: int) -> np.ndarray | None:
        if i not in cache:
            cache[i] = read_image(tracklet.frames[i])
        return cache[i]

    out = []
    for i in positions:
        if i < 0 or i >= len(tracklet.frames):
            raise IndexError(
                f"frame index {i} out of range for {tracklet.key} ({len(tracklet.frames)} frames)"
            )
        frame = load(i)
        if frame is None:
            if on_unreadable == "raise":
                raise FrameReadError(f"cannot decode frame {tracklet.frames[i]}")
            frame = _nearest_readable(len(tracklet.frames), i, load, tracklet)
        out.append(frame)
    return out


def _nearest_readable(count: int, index: int, load, tracklet: Tracklet) -> np.ndarray:
    for distance in range(1, count):
        for j in (index - distance, index + distance):
            if 0 <= j < count and (frame := load(j)) is not None:
                return frame
    raise FrameReadError(f"no frame of tracklet {tracklet.key} can be decoded ({tracklet.source})")

"""Skeleton sequences of identified people, no frames: one `.npy` or `.csv` file per sequence plus
the `folder` adapter's manifest (same columns), e.g. motion capture or a depth camera's joints.

    <root>/manifest.csv      path,pid,clothes,camera,split
                             walks/alice_01.npy,alice,coat,1,query
    <root>/walks/alice_01.npy  (T, 14, 3) or (T, 42) float, metres
    <root>/walks/bob_01.csv    T rows of 42 numbers (an optional header row is skipped)

Joints are in our order (`pipeline.skeleton.JOINT_NAMES`, x, y, z per joint) and axes — those of
MediaPipe's world landmarks: camera x right, y down, z away from the camera; any origin (the
cache hip-centres every frame). A frame whose row holds a NaN (or an empty CSV cell) has no
person: it is filled like a missed MediaPipe detection and `present` is False there.

Problems never stop the set: a missing file or a wrong suffix is a `Failure` when the manifest
is read, and `read_sequence` raises `SequenceError` (a one-line reason) for an unreadable file,
a wrong shape or column count, an empty file or one without a single complete frame, which
preprocess records against that sequence only. A file whose bytes repeat an earlier one's is a
copy, not a second recording (it would be a perfect match), and is dropped (`drop_duplicates`).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.layouts import Failure, Tracklet
from pipeline.layouts.folder import manifest_entries, read_manifest
from pipeline.skeleton import JOINT_NAMES, NUM_JOINTS

SEQUENCE_SUFFIXES = (".npy", ".csv")
COLUMNS = NUM_JOINTS * 3

EXPECTED_LAYOUT = """expected a skeleton-sequence dataset like:
  <root>/manifest.csv     header "path,pid,clothes,camera,split", one sequence a row
  <root>/<name>.npy       (T, 14, 3) or (T, 42) joints in metres, or
  <root>/<name>.csv       T rows of 42 numbers (optional header row)
  joints in the order head, neck, l/r shoulder, l/r elbow, l/r hand, l/r hip, l/r knee,
  l/r foot; axes x right, y down, z away from the camera (MediaPipe's world landmarks)"""


class SequenceError(ValueError):
    """A sequence file cannot be used; the message is one line saying why."""


@dataclass(frozen=True)
class Sequence:
    """One person's joints: `joints` (T, 14, 3) float32 metres in our order and axes (rows where
    `present` is False hold no person and may be NaN); `unreadable`: the frames whose rows are
    bad input (NaN in the file), reported as such; `first_frame` = the file's frame index of
    `joints[0]` (an adapter may trim frames that are not the person's)."""

    joints: np.ndarray
    present: np.ndarray
    unreadable: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    first_frame: int = 0


def load(root: str | Path, manifest: str | Path = "") -> tuple[list[Tracklet], list[Failure]]:
    root, manifest, rows = read_manifest(root, manifest, EXPECTED_LAYOUT)
    tracklets: list[Tracklet] = []
    failures: list[Failure] = []
    for e in manifest_entries(root, manifest, rows):
        if isinstance(e, Failure):
            failures.append(e)
        elif not e.target.is_file():
            failures.append(Failure("missing file", str(e.target), e.key))
        elif e.target.suffix.lower() not in SEQUENCE_SUFFIXES:
            failures.append(Failure("not a .npy or .csv sequence", str(e.target), e.key))
        else:
            tracklets.append(
                Tracklet(e.key, (), "", e.pid, e.clothes, e.camera, e.split, str(e.target))
            )
    kept, copies = drop_duplicates(tracklets)
    return kept, failures + copies


def drop_duplicates(tracklets: list[Tracklet]) -> tuple[list[Tracklet], list[Failure]]:
    """Keep the first of sequences with byte-identical files; the others become failures."""
    first: dict[str, str] = {}
    kept, failures = [], []
    for tracklet in tracklets:
        try:
            digest = hashlib.sha256(Path(tracklet.skeleton).read_bytes()).hexdigest()
        except OSError:
            kept.append(tracklet)  # read_sequence reports the unreadable file
            continue
        if digest in first:
            reason = f"identical to {first[digest]} (a copy, not another recording)"
            failures.append(Failure(reason, tracklet.skeleton, tracklet.key))
            continue
        first[digest] = tracklet.key
        kept.append(tracklet)
    return kept, failures


def read_sequence(path: str | Path) -> Sequence:
    """A `.npy` or `.csv` sequence in our joint order and axes → `Sequence`."""
    path = Path(path)
    values = _read_npy(path) if path.suffix.lower() == ".npy" else _read_csv(path)
    if values.ndim == 2 and values.shape[1] == COLUMNS:
        values = values.reshape(len(values), NUM_JOINTS, 3)
    if values.ndim != 3 or values.shape[1:] != (NUM_JOINTS, 3):
        raise SequenceError(
            f"wrong shape {values.shape}: expected (T, {NUM_JOINTS}, 3) or (T, {COLUMNS}) joints"
        )
    return checked_sequence(values.astype(np.float32))


def checked_sequence(joints: np.ndarray) -> Sequence:
    """(T, 14, 3) joints → `Sequence` with `present` = frames whose joints are all finite, the
    others unreadable; SequenceError for an empty sequence or one without a complete frame."""
    if not len(joints):
        raise SequenceError("empty sequence (no frames)")
    present = np.isfinite(joints).all(axis=(1, 2))
    if not present.any():
        raise SequenceError(f"no complete frame: all {len(joints)} frames hold NaN joints")
    return Sequence(joints, present, np.flatnonzero(~present))


def _read_npy(path: Path) -> np.ndarray:
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise SequenceError(f"unreadable .npy file ({error})") from None
    if not np.issubdtype(values.dtype, np.number):
        raise SequenceError(f"not a numeric array (dtype {values.dtype})")
    return np.asarray(values, dtype=np.float64)


def _read_csv(path: Path) -> np.ndarray:
    """Rows of 42 numbers; an optional first header row (any non-numeric cell) is skipped;
    empty cells are NaN."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise SequenceError(f"unreadable .csv file ({error})") from None
    lines = [(n, line) for n, line in enumerate(io.StringIO(text), start=1) if line.strip()]
    if lines and not _numeric(lines[0][1]):
        lines = lines[1:]
    return parse_rows(lines, COLUMNS, _column_hint())


def parse_rows(lines: list[tuple[int, str]], columns: int, hint: str) -> np.ndarray:
    """Comma-separated `(line number, text)` rows of exactly `columns` numbers → (T, columns);
    SequenceError naming the first bad line."""
    rows = []
    for number, line in lines:
        cells = [cell.strip() for cell in line.rstrip("\r\n").split(",")]
        if len(cells) != columns:
            raise SequenceError(
                f"line {number} has {len(cells)} columns, expected {columns} ({hint})"
            )
        try:
            rows.append([float(cell) if cell else np.nan for cell in cells])
        except ValueError:
            raise SequenceError(f"line {number} holds a cell that is not a number") from None
    return np.array(rows, dtype=np.float64).reshape(len(rows), columns)


def _numeric(line: str) -> bool:
    try:
        [float(cell) for cell in line.split(",") if cell.strip()]
    except ValueError:
        return False
    return True


def _column_hint() -> str:
    return f"x, y, z of the {NUM_JOINTS} joints {', '.join(JOINT_NAMES)}"

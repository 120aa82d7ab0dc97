"""Own footage (SPEC §3.3): videos or frame folders under a root, listed in a CSV manifest.

    path,pid,clothes,camera,split
    cam1/alice_walk.mp4,alice,coat,1,query
    frames/bob_0001,bob,shirt,2,gallery

`path` is relative to the root (or absolute): a video file (decoded with OpenCV) or a folder of
frame images (sorted by file name). The manifest defaults to `<root>/manifest.csv`. Clothes labels
are taken per person, like CCVID's ("pid/clothes").

`read_manifest` and `manifest_entries` are shared with the skeleton-sequence adapter
(`skeletons.py`), whose manifest has the same columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pipeline.layouts import (
    SPLITS,
    DatasetLayoutError,
    Failure,
    Tracklet,
    clothes_id,
    is_video,
    list_frames,
)

COLUMNS = ("path", "pid", "clothes", "camera", "split")

EXPECTED_LAYOUT = """expected a folder dataset like:
  <root>/manifest.csv          header "path,pid,clothes,camera,split", one tracklet a row
  <root>/<video file>          .mp4 .avi .mov .mkv ... decoded with OpenCV, or
  <root>/<frame folder>/*.jpg  frames sorted by file name
  (split is train, query or gallery; another manifest file: `data.manifest`)"""


@dataclass(frozen=True)
class ManifestEntry:
    """One well-formed manifest row: `target` is the path it names, resolved against the root."""

    key: str
    target: Path
    pid: str
    clothes: str  # already "pid/label"
    camera: int
    split: str


def read_manifest(
    root: str | Path, manifest: str | Path, layout: str
) -> tuple[Path, Path, list[dict]]:
    """(absolute root, manifest path, rows as stripped dicts); DatasetLayoutError showing `layout`
    for a missing root or manifest or a wrong header."""
    root = Path(root).absolute()
    manifest = Path(manifest) if manifest else root / "manifest.csv"
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset root {root} does not exist — {layout}")
    if not manifest.is_file():
        raise DatasetLayoutError(f"manifest {manifest} does not exist — {layout}")
    # utf-8-sig: a spreadsheet may save the manifest with a byte-order mark before "path".
    with open(manifest, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        if sorted(header) != sorted(COLUMNS):
            raise DatasetLayoutError(
                f"manifest {manifest} has columns {header}, not {list(COLUMNS)} — {layout}"
            )
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    return root, manifest, rows


def manifest_entries(root: Path, manifest: Path, rows: list[dict]) -> list[ManifestEntry | Failure]:
    """Each row in order: an entry when well-formed and unique, else its failure."""
    items: list[ManifestEntry | Failure] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):
        where = f"{manifest}:{number}"
        try:
            camera = int(row["camera"])
        except ValueError:
            items.append(Failure("malformed manifest row", where))
            continue
        if not row["path"] or not row["pid"] or row["split"] not in SPLITS:
            items.append(Failure("malformed manifest row", where))
            continue
        key = row["path"]
        if key in seen:
            items.append(Failure("duplicate tracklet", where, key))
            continue
        seen.add(key)
        target = Path(key) if Path(key).is_absolute() else root / key
        clothes = clothes_id(row["pid"], row["clothes"])
        items.append(ManifestEntry(key, target, row["pid"], clothes, camera, row["split"]))
    return items


def load(root: str | Path, manifest: str | Path = "") -> tuple[list[Tracklet], list[Failure]]:
    root, manifest, rows = read_manifest(root, manifest, EXPECTED_LAYOUT)
    tracklets: list[Tracklet] = []
    failures: list[Failure] = []
    for e in manifest_entries(root, manifest, rows):
        if isinstance(e, Failure):
            failures.append(e)
        elif e.target.is_file() and is_video(e.target):
            tracklets.append(
                Tracklet(e.key, (), str(e.target), e.pid, e.clothes, e.camera, e.split)
            )
        elif e.target.is_dir():
            frames = list_frames(e.target)
            if not frames:
                failures.append(Failure("empty folder", str(e.target), e.key))
                continue
            tracklets.append(Tracklet(e.key, frames, "", e.pid, e.clothes, e.camera, e.split))
        elif e.target.is_file():
            failures.append(Failure("not a video or frame folder", str(e.target), e.key))
        else:
            failures.append(Failure("missing folder", str(e.target), e.key))
    return tracklets, failures

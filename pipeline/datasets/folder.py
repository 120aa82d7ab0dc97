"""Own footage (SPEC §3.3): videos or frame folders under a root, listed in a CSV manifest.

    path,pid,clothes,camera,split
    cam1/alice_walk.mp4,alice,coat,1,query
    frames/bob_0001,bob,shirt,2,gallery

`path` is relative to the root (or absolute): a video file (decoded with OpenCV) or a folder of
frame images (sorted by file name). The manifest defaults to `<root>/manifest.csv`. Clothes labels
are taken per person, like CCVID's ("pid/clothes").
"""

from __future__ import annotations

import csv
from pathlib import Path

from pipeline.datasets import (
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
  (split is train, query or gallery; pass another manifest with --manifest)"""


def load(root: str | Path, manifest: str | Path = "") -> tuple[list[Tracklet], list[Failure]]:
    root = Path(root).absolute()
    manifest = Path(manifest) if manifest else root / "manifest.csv"
    if not root.is_dir():
        raise DatasetLayoutError(f"folder dataset root {root} does not exist — {EXPECTED_LAYOUT}")
    if not manifest.is_file():
        raise DatasetLayoutError(f"manifest {manifest} does not exist — {EXPECTED_LAYOUT}")
    # utf-8-sig: a spreadsheet may save the manifest with a byte-order mark before "path".
    with open(manifest, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        if sorted(header) != sorted(COLUMNS):
            raise DatasetLayoutError(
                f"manifest {manifest} has columns {header}, not {list(COLUMNS)} — {EXPECTED_LAYOUT}"
            )
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]

    tracklets: list[Tracklet] = []
    failures: list[Failure] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):
        where = f"{manifest}:{number}"
        try:
            camera = int(row["camera"])
        except ValueError:
            failures.append(Failure("malformed manifest row", where))
            continue
        if not row["path"] or not row["pid"] or row["split"] not in SPLITS:
            failures.append(Failure("malformed manifest row", where))
            continue
        key = row["path"]
        if key in seen:
            failures.append(Failure("duplicate tracklet", where, key))
            continue
        target = Path(key) if Path(key).is_absolute() else root / key
        pid, clothes = row["pid"], clothes_id(row["pid"], row["clothes"])
        if target.is_file() and is_video(target):
            seen.add(key)
            tracklets.append(Tracklet(key, (), str(target), pid, clothes, camera, row["split"]))
        elif target.is_dir():
            frames = list_frames(target)
            if not frames:
                failures.append(Failure("empty folder", str(target), key))
                continue
            seen.add(key)
            tracklets.append(Tracklet(key, frames, "", pid, clothes, camera, row["split"]))
        elif target.is_file():
            failures.append(Failure("not a video or frame folder", str(target), key))
        else:
            failures.append(Failure("missing folder", str(target), key))
    return tracklets, failures

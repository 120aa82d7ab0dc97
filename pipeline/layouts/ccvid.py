"""CCVID, read the way the CAL code reads it (SPEC §3.1).

    <root>/session{1,2,3}/<pid>_<video>/<frame>.jpg
    <root>/{train,query,gallery}.txt     one tracklet a line: "path pid clothes_label"

Camera id = int(path.split('_')[1]), plus 12 in session3. Clothes id = (pid, label), made
globally unique as "pid/label"; query and gallery share that mapping.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.layouts import (
    SPLITS,
    DatasetLayoutError,
    Failure,
    Tracklet,
    clothes_id,
    list_frames,
)

EXPECTED_TREE = """expected a CCVID root like:
  <root>/
    train.txt  query.txt  gallery.txt     lines "session1/001_01 001 u0_l0_s0_c0_a0"
    session1/001_01/00001.jpg ...
    session2/...  session3/...
(`asgl-pipeline synth` writes this layout)"""

SESSION3_CAMERA_OFFSET = 12


def camera_of(path: str) -> int:
    """CAL's rule: the number after the first '_' of the tracklet path; session3 adds 12."""
    camera = int(path.split("_")[1])
    if path.split("/")[0] == "session3":
        camera += SESSION3_CAMERA_OFFSET
    return camera


def load(root: str | Path) -> tuple[list[Tracklet], list[Failure]]:
    root = Path(root).absolute()
    missing = [f"{split}.txt" for split in SPLITS if not (root / f"{split}.txt").is_file()]
    if not root.is_dir() or missing:
        what = "does not exist" if not root.is_dir() else f"has no {', '.join(missing)}"
        raise DatasetLayoutError(f"CCVID root {root} {what} — {EXPECTED_TREE}")

    tracklets: list[Tracklet] = []
    failures: list[Failure] = []
    seen: set[str] = set()
    for split in SPLITS:
        split_file = root / f"{split}.txt"
        for number, line in enumerate(split_file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{split_file}:{number}"
            fields = line.split()
            if len(fields) != 3 or "_" not in fields[0]:
                failures.append(Failure("malformed split line", where))
                continue
            path, pid, label = fields
            path = path.strip("/")
            try:
                camera = camera_of(path)
            except ValueError:
                failures.append(Failure("malformed split line", where))
                continue
            folder = root / path
            if not folder.is_dir():
                failures.append(Failure("missing folder", str(folder), path))
                continue
            if path in seen:
                failures.append(Failure("duplicate tracklet", where, path))
                continue
            frames = list_frames(folder)
            if not frames:
                failures.append(Failure("empty folder", str(folder), path))
                continue
            seen.add(path)
            tracklets.append(Tracklet(path, frames, "", pid, clothes_id(pid, label), camera, split))
    return tracklets, failures

"""VCCR, read the way the ASGL authors' baseline reads it (SPEC §3.2); the tree is the split.

    <root>/train/<pid>/<tracklet>/<frames>
    <root>/test_qg/{query,gallery}/<pid>/<cam>/<tracklet>/<frames>

Frame file names split on '-' (fields counted from 0, field 0 being the person):
field 1 minus its first character = camera id, field 2 minus its first character = clothes label
(unique only within a person), last field minus its first character and the extension = frame key
(frames sorted by that key as a string). E.g. `0001-c3-o2-f000123.jpg` → camera 3, clothes "2",
key "000123". Query and gallery tracklets with fewer than 8 frames are skipped, as the baseline
does. `<root>` may also be the folder that contains `VCCR/`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.layouts import (
    DatasetLayoutError,
    Failure,
    Tracklet,
    clothes_id,
    is_image,
)

MIN_TEST_FRAMES = 8

EXPECTED_TREE = """expected a VCCR root like:
  <root>/
    train/<pid>/<tracklet>/<pid>-c<cam>-o<clothes>-f<frame>.jpg
    test_qg/query/<pid>/<cam>/<tracklet>/<frames>
    test_qg/gallery/<pid>/<cam>/<tracklet>/<frames>
  frame names split on '-': field 1 = 'c'+camera, field 2 = 'o'+clothes, last = 'f'+frame key"""


def parse_frame_name(name: str) -> tuple[int, str, str]:
    """File name → (camera, clothes label, frame key); ValueError when it does not fit."""
    stem = Path(name).stem
    fields = stem.split("-")
    if len(fields) < 4 or min(len(f) for f in fields[1:3]) < 2 or len(fields[-1]) < 2:
        raise ValueError(f"frame name {name!r} does not have the VCCR fields")
    return int(fields[1][1:]), fields[2][1:], fields[-1][1:]


def _resolve_root(root: Path) -> Path:
    if not (root / "train").is_dir() and (root / "VCCR").is_dir():
        return root / "VCCR"
    return root


def _tracklet(folder: Path, key: str, pid: str, split: str) -> Tracklet | Failure:
    images = [p for p in folder.iterdir() if p.is_file() and is_image(p)]
    if not images:
        return Failure("empty folder", str(folder), key)
    try:
        parsed = [(parse_frame_name(p.name), p) for p in images]
    except ValueError as error:
        raise DatasetLayoutError(f"VCCR: {error} in {folder} — {EXPECTED_TREE}") from None
    parsed.sort(key=lambda item: (item[0][2], item[1].name))  # frame key, string order
    (camera, label, _), _ = parsed[0]
    frames = tuple(str(p) for _, p in parsed)
    return Tracklet(key, frames, "", pid, clothes_id(pid, label), camera, split)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def load(root: str | Path) -> tuple[list[Tracklet], list[Failure]]:
    root = _resolve_root(Path(root).absolute())
    needed = [root / "train", root / "test_qg" / "query", root / "test_qg" / "gallery"]
    missing = [str(p.relative_to(root)) for p in needed if not p.is_dir()]
    if not root.is_dir() or missing:
        what = "does not exist" if not root.is_dir() else f"has no {', '.join(missing)}/"
        raise DatasetLayoutError(f"VCCR root {root} {what} — {EXPECTED_TREE}")

    tracklets: list[Tracklet] = []
    failures: list[Failure] = []

    def add(folder: Path, pid: str, split: str) -> None:
        key = folder.relative_to(root).as_posix()
        if key.startswith("test_qg/"):
            key = key[len("test_qg/") :]
        item = _tracklet(folder, key, pid, split)
        if isinstance(item, Failure):
            failures.append(item)
        elif split == "train" or len(item.frames) >= MIN_TEST_FRAMES:
            tracklets.append(item)

    for pid_dir in _subfolders(root / "train"):
        for folder in _subfolders(pid_dir):
            add(folder, pid_dir.name, "train")
    for split in ("query", "gallery"):
        for pid_dir in _subfolders(root / "test_qg" / split):
            for cam_dir in _subfolders(pid_dir):
                for folder in _subfolders(cam_dir):
                    add(folder, pid_dir.name, split)
    return tracklets, failures

"""What `tracklets VIDEO_OR_FOLDER...` reads: each argument is a video file, a folder of frame
images (one video), or a folder holding videos and/or frame folders (one level down)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.layouts import Tracklet, is_video, list_frames


@dataclass(frozen=True)
class Footage:
    name: str  # output folder name, unique within a run (the file or folder stem)
    source: str  # absolute path of the video file or frame folder
    frames: tuple[str, ...]  # frame images of a frame folder; empty for a video

    def as_tracklet(self, camera: int) -> Tracklet:
        """The dataset record, so that the datasets' frame reader decodes it."""
        video = "" if self.frames else self.source
        return Tracklet(self.name, self.frames, video, "", "", camera, "gallery")


def _found(path: Path) -> list[tuple[Path, tuple[str, ...]]]:
    if path.is_file():
        return [(path, ())]
    frames = list_frames(path)
    if frames:
        return [(path, frames)]
    found = []
    for child in sorted(path.iterdir()):
        if child.is_file() and is_video(child):
            found.append((child, ()))
        elif child.is_dir() and (child_frames := list_frames(child)):
            found.append((child, child_frames))
    return found


def find_footage(paths: list[str]) -> tuple[list[Footage], list[str]]:
    """→ (footage in argument order, then file name order; problems: one line per argument
    that is missing or holds no video). Names are the stems, numbered when two clash."""
    footage, problems, used = [], [], set()
    for argument in paths:
        path = Path(argument).absolute()
        if not path.exists():
            problems.append(f"{argument} does not exist")
            continue
        found = _found(path)
        if not found:
            problems.append(
                f"{argument} holds no video file ({', '.join(('.mp4', '.avi', '...'))}) "
                "and no frame images"
            )
        for source, frames in found:
            name, number = source.stem if source.is_file() else source.name, 2
            base = name
            while name in used:
                name, number = f"{base}-{number}", number + 1
            used.add(name)
            footage.append(Footage(name, str(source), frames))
    return footage, problems

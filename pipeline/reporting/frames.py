"""Frames and skeletons for the report's pictures, read through the dataset adapters
(`pipeline.layouts`) and the skeleton cache (`pipeline.cache`). Either may be missing or
unreadable; callers then get a reason string and skip that plot."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.cache import SkeletonCache
from pipeline.errors import StageError
from pipeline.layouts import (
    Tracklet,
    estimated_frame_count,
    list_frames,
    load_tracklets,
    read_frames,
)
from pipeline.reporting.plots import SkeletonPanel
from pipeline.skeleton import map_33_to_14

THUMB_HEIGHT = 128


def _rgb_thumbnail(frame_bgr: np.ndarray, height: int = THUMB_HEIGHT) -> np.ndarray:
    scale = height / frame_bgr.shape[0]
    width = max(1, round(frame_bgr.shape[1] * scale))
    resized = cv2.resize(frame_bgr, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(resized[..., ::-1])


def middle_frame(path: str) -> np.ndarray | None:
    """The middle frame (BGR) of a video file or frame folder; None if it cannot be read."""
    try:
        source = Path(path)
        if source.is_dir():
            tracklet = Tracklet("", list_frames(source), "", "", "", 0, "")
            count = len(tracklet.frames)
        elif source.is_file():
            tracklet = Tracklet("", (), str(source), "", "", 0, "")
            count = estimated_frame_count(tracklet)
        else:
            return None
        return read_frames(tracklet, [max(0, count // 2)])[0] if count else None
    except (StageError, IndexError, OSError):
        return None


class TrackletFrames:
    """Frames of one dataset's tracklets, by tracklet key."""

    def __init__(self, tracklets, read_frames):
        self._by_key = {t.key: t for t in tracklets}
        self._read_frames = read_frames

    def frame(self, key: str, index: int | None = None) -> np.ndarray | None:
        """BGR frame `index` of tracklet `key` (default: the middle one); None if unreadable."""
        tracklet = self._by_key.get(key)
        if tracklet is None:
            return None
        if index is None:
            index = len(tracklet.frames) // 2 if tracklet.frames else 0
        try:
            frames = self._read_frames(tracklet, [index])
        except Exception:  # a broken frame only blanks that thumbnail; the report goes on
            return None
        return frames[0] if frames else None

    def thumbnail(self, key: str) -> np.ndarray | None:
        frame = self.frame(key)
        return None if frame is None else _rgb_thumbnail(frame)


def open_frames(adapter: str, root: str, manifest: str = "") -> tuple[TrackletFrames | None, str]:
    """(frames, "") or (None, reason)."""
    if not root or not Path(root).is_dir():
        return None, f"the dataset root {root or '(none)'} is not a folder here"
    try:
        tracklets, _failures = load_tracklets(adapter, root, manifest)
    except Exception as error:  # any adapter failure only costs the pictures, not the tables
        return None, f"the {adapter} dataset at {root} could not be read ({error})"
    return TrackletFrames(tracklets, read_frames), ""


def skeleton_panels(
    cache_path: str, frames: TrackletFrames, count: int = 8
) -> tuple[list[SkeletonPanel], str]:
    """Up to `count` frames, from tracklets spread through the cache, with their 14 image-space
    joints. Returns (panels, "") or ([], reason)."""
    if not cache_path or not Path(cache_path).is_file():
        return [], f"the skeleton cache {cache_path or '(none)'} does not exist here"
    try:
        cache = SkeletonCache(cache_path)
        keys = sorted(cache.keys())
        picks = (
            [keys[i] for i in sorted(set(np.linspace(0, len(keys) - 1, count).round().astype(int)))]
            if keys
            else []
        )
        panels = []
        for key in picks:
            arrays = cache.read(key, fields=("image33", "present"))
            detected = np.flatnonzero(np.asarray(arrays["present"], dtype=bool))
            if detected.size == 0:
                continue
            t = int(detected[detected.size // 2])
            frame = frames.frame(key, t)
            if frame is None:
                continue
            height, width = frame.shape[:2]
            # MediaPipe image landmarks are normalised to the frame: x by width, y by height.
            joints = map_33_to_14(np.asarray(arrays["image33"])[t : t + 1])[0, :, :2]
            panels.append(
                SkeletonPanel(
                    image=np.ascontiguousarray(frame[..., ::-1]),
                    joints_xy=joints * np.array([width, height], dtype=np.float32),
                    caption=f"{key} t={t}",
                )
            )
        close = getattr(cache, "close", None)
        if close is not None:
            close()
    except Exception as error:  # a cache we cannot read costs the strip, not the report
        return [], f"the skeleton cache {cache_path} could not be read ({error})"
    if not panels:
        return [], f"no frame with a detected skeleton could be read from {cache_path}"
    return panels, ""

"""Clip datasets over tracklets: frames from the frame cache or read with OpenCV and resized
(pipeline/data/frames.py, the same pixels either way), joints sliced from the skeleton cache
(held in memory), both flipped together when a training clip is mirrored.

Items are `(frames (T, 3, H, W), joints (T, 14, C), pid index, camera, clothes index)`; a branch
the model lacks gets an empty tensor in its place (nothing is read for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline.data.clips import dense_chunks, test_clip_indices, training_clip
from pipeline.data.frames import IMAGENET_MEAN, IMAGENET_STD, load_frames, normalised
from pipeline.layouts import Tracklet
from pipeline.skeleton import flip_joints

EMPTY = torch.zeros(0)
__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ClipSource", "EvalClips", "TrainClips", "load_frames"]


@dataclass(frozen=True)
class ClipSource:
    """One tracklet ready for clips: where its frames are, its cached joints and its labels."""

    tracklet: Tracklet
    num_frames: int
    joints: np.ndarray | None = field(repr=False)  # (T, 14, C) float32; None: no skeleton branch
    pid_index: int  # class index for training identities, -1 otherwise
    camera: int
    clothes_index: int
    # (T, H, W, 3) uint8 RGB from the frame cache (pipeline/data/frames.py); None: decode files
    pixels: np.ndarray | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return self.tracklet.key


class ClipDataset(Dataset):
    """Frames and joints of the clip at `indices` of a source, optionally mirrored."""

    def __init__(
        self,
        sources: list[ClipSource],
        height: int,
        width: int,
        load_frames: bool,
        x_channels: tuple[int, ...] = (0,),
    ):
        self.sources = sources
        self.height, self.width = height, width
        self.load_frames = load_frames
        self.x_channels = x_channels  # the joints' horizontal coordinates (cache.pose_x_channels)

    def frames(self, source: ClipSource, indices: list[int]) -> np.ndarray:
        """(T, 3, H, W) float32: from the frame cache when it holds this size, else decoded."""
        pixels = source.pixels
        if pixels is not None and pixels.shape[1:3] == (self.height, self.width):
            return normalised(pixels[indices])
        return load_frames(source.tracklet, indices, self.height, self.width)

    def clip(self, source: ClipSource, indices: list[int], flip: bool = False):
        frames, joints = EMPTY, EMPTY
        if self.load_frames:
            array = self.frames(source, indices)
            if flip:
                array = array[..., ::-1]
            frames = torch.from_numpy(np.ascontiguousarray(array))
        if source.joints is not None:
            array = source.joints[indices]
            if flip:
                array = flip_joints(array, self.x_channels)  # as the mirrored frames
            joints = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return frames, joints


class TrainClips(ClipDataset):
    """Random training clips; indexed by the identity sampler's `(item index, clip seed)`.

    Items are CAL's dense-sampling chunks (`sampling_step` frames each, the last keeping the
    remainder; 0 = whole tracklets): a long tracklet counts as several items for the identity
    sampler, and the random clip crop stays inside its chunk."""

    def __init__(
        self,
        sources: list[ClipSource],
        seq_len: int,
        stride: int,
        height: int,
        width: int,
        flip: bool,
        load_frames: bool,
        sampling_step: int = 0,
        x_channels: tuple[int, ...] = (0,),
    ):
        super().__init__(sources, height, width, load_frames, x_channels)
        self.seq_len, self.stride, self.flip = seq_len, stride, flip
        self.items = [
            (index, chunk)
            for index, source in enumerate(sources)
            for chunk in dense_chunks(source.num_frames, sampling_step)
        ]

    @property
    def item_pids(self) -> list[int]:
        """The identity (class index) of every item, what the identity sampler groups by."""
        return [self.sources[index].pid_index for index, _ in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        source_index, chunk = self.items[index]
        source = self.sources[source_index]
        rng = np.random.default_rng(seed)
        offsets = training_clip(len(chunk), self.seq_len, self.stride, rng)
        indices = [chunk.start + offset for offset in offsets]
        flip = bool(self.flip and rng.random() < 0.5)
        frames, joints = self.clip(source, indices, flip)
        return frames, joints, source.pid_index, source.camera, source.clothes_index


class EvalClips(ClipDataset):
    """Every source's test clips by CAL's rule (`test_clip_indices`, SPEC §7); items are
    `(frames, joints, source index)` so clip features can be averaged per tracklet."""

    def __init__(
        self,
        sources: list[ClipSource],
        seq_len: int,
        stride: int,
        height: int,
        width: int,
        load_frames: bool,
    ):
        super().__init__(sources, height, width, load_frames)
        self.items = [
            (index, clip)
            for index, source in enumerate(sources)
            for clip in test_clip_indices(source.num_frames, seq_len, stride)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item: int):
        index, indices = self.items[item]
        frames, joints = self.clip(self.sources[index], indices)
        return frames, joints, index

"""Training and evaluation data: clip sampling, clip datasets, identity samplers, and the
matching of split files with the skeleton cache."""

from pipeline.data.clips import dense_chunks, loop_pad, test_clip_indices, training_clip
from pipeline.data.dataset import ClipSource, EvalClips, TrainClips, load_frames
from pipeline.data.sampler import DistributedIdentitySampler, IdentitySampler
from pipeline.data.splits import DataSplits, load_splits, open_cache

__all__ = [
    "ClipSource",
    "DataSplits",
    "DistributedIdentitySampler",
    "EvalClips",
    "IdentitySampler",
    "TrainClips",
    "dense_chunks",
    "load_frames",
    "load_splits",
    "loop_pad",
    "open_cache",
    "test_clip_indices",
    "training_clip",
]

"""Which frames of a tracklet form a clip (paper §4.2, SPEC §6–7).

Training: `seq_len` frames taken every `stride` frames from a random start; a tracklet too short
for the full span is loop-padded with its own sampled frames (as CAL's temporal random crop).
Evaluation: every frame, in consecutive clips of `seq_len`; the last clip loop-padded.
"""

from __future__ import annotations

import numpy as np


def loop_pad(indices: list[int], length: int) -> list[int]:
    """Repeat `indices` from its start until it has `length` entries."""
    if not indices:
        raise ValueError("cannot pad an empty clip")
    padded = list(indices)
    while len(padded) < length:
        padded += indices[: length - len(padded)]
    return padded


def training_clip(
    num_frames: int, seq_len: int, stride: int, rng: np.random.Generator
) -> list[int]:
    """`seq_len` frame indices, `stride` apart, from a random start (loop-padded if short)."""
    if num_frames <= 0:
        raise ValueError("a tracklet with no frames has no clip")
    stride = max(1, int(stride))
    span = seq_len * stride
    start = int(rng.integers(0, max(0, num_frames - span) + 1))
    return loop_pad(list(range(start, min(start + span, num_frames), stride)), seq_len)


def evaluation_clips(num_frames: int, seq_len: int) -> list[list[int]]:
    """All frames in consecutive `seq_len` clips; the last one loop-padded with its own frames."""
    return [
        loop_pad(list(range(start, min(start + seq_len, num_frames))), seq_len)
        for start in range(0, max(0, num_frames), seq_len)
    ]

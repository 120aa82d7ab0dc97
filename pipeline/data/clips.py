"""Which frames of a tracklet form a clip (paper §4.2, SPEC §6–7).

Training: `seq_len` frames taken every `stride` frames from a random start; a tracklet too short
for the full span is loop-padded with its own sampled frames (as CAL's temporal random crop).
Evaluation: CAL's `_recombination_for_testset` (SPEC §7), `test_clip_indices`.
Dense training sampling: CAL's `_densesampling_for_trainingset`, `dense_chunks`.
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


def test_clip_indices(num_frames: int, seq_len: int, stride: int) -> list[list[int]]:
    """The test clips CAL builds from a tracklet of `num_frames` frames, in CAL's order.

    Each full block of seq_len·stride frames gives `stride` interleaved clips (clip j: frames
    b+j, b+j+stride, …). The block left over gives r // seq_len interleaved clips at that reduced
    stride (r = the frames left). When num_frames is not a multiple of seq_len, one last clip takes
    the trailing num_frames mod seq_len frames, loop-padded. ceil(num_frames / seq_len) clips in
    all, so every frame is used once except the padding.
    """
    if seq_len < 1 or stride < 1:
        raise ValueError(f"seq_len and stride must be ≥ 1 (got {seq_len}, {stride})")
    block = seq_len * stride
    full_blocks, remainder = divmod(max(0, int(num_frames)), block)
    offsets = np.arange(seq_len)
    clips = [
        (start + j + offsets * stride).tolist()
        for start in range(0, full_blocks * block, block)
        for j in range(stride)
    ]
    reduced = remainder // seq_len
    start = full_blocks * block
    clips += [(start + j + offsets * reduced).tolist() for j in range(reduced)]
    tail = num_frames % seq_len
    if tail:
        clips.append(loop_pad(list(range(num_frames - tail, num_frames)), seq_len))
    return clips


test_clip_indices.__test__ = False  # a product function, not a pytest test, despite its name


def dense_chunks(num_frames: int, step: int) -> list[range]:
    """CAL's dense training sampling: consecutive `step`-frame chunks of a tracklet, the last one
    keeping the remainder (so no chunk is shorter than `step`); a tracklet shorter than `step`,
    or `step` = 0, stays whole."""
    if step < 0:
        raise ValueError(f"sampling_step must be ≥ 0 (got {step})")
    chunks = num_frames // step if step else 0
    if chunks <= 1:
        return [range(0, num_frames)]
    bounds = [i * step for i in range(chunks)] + [num_frames]
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

"""Which frames form a clip (pipeline/data/clips.py): training crops, CAL's dense training chunks,
and CAL's test clips — equal to a transcription of CAL's loop for n = 1…300, and at the edges
(n mod L = 0, 1 and L − 1, a 1-frame tracklet, n < L) every tracklet gets full clips that use each
of its frames."""

import numpy as np
import pytest

from pipeline.data import clips
from pipeline.data.clips import loop_pad, test_clip_indices, training_clip


def test_training_clip_takes_strided_frames_from_a_random_start():
    starts = set()
    for seed in range(30):
        clip = training_clip(40, seq_len=8, stride=4, rng=np.random.default_rng(seed))
        assert len(clip) == 8 and np.all(np.diff(clip) == 4) and 0 <= clip[0] and clip[-1] < 40
        starts.add(clip[0])
    assert starts == set(range(0, 40 - 32 + 1))  # every start is possible
    again = training_clip(40, 8, 4, np.random.default_rng(3))
    assert again == training_clip(40, 8, 4, np.random.default_rng(3))


def test_short_training_clip_is_loop_padded():
    clip = training_clip(10, seq_len=8, stride=4, rng=np.random.default_rng(0))
    assert clip == [0, 4, 8, 0, 4, 8, 0, 4]
    assert training_clip(1, seq_len=3, stride=2, rng=np.random.default_rng(0)) == [0, 0, 0]


def cal_recombination(num_frames: int, seq_len: int, stride: int) -> list[list[int]]:
    """CAL's `_recombination_for_testset` for one tracklet, transcribed loop for loop (list
    slices of the frame list, the in-place loop padding), independently of the product's code."""
    frames = list(range(num_frames))
    out = []
    for i in range(num_frames // (seq_len * stride)):
        for j in range(stride):
            begin, end = i * seq_len * stride + j, (i + 1) * seq_len * stride
            out.append(frames[begin:end:stride])
    if num_frames % (seq_len * stride) != 0:
        new_stride = (num_frames % (seq_len * stride)) // seq_len
        base = num_frames // (seq_len * stride) * (seq_len * stride)
        for i in range(new_stride):
            out.append(frames[base + i : base + seq_len * new_stride : new_stride])
        if num_frames % seq_len != 0:
            clip = frames[num_frames // seq_len * seq_len :]
            while len(clip) < seq_len:
                for index in clip:  # CAL appends while iterating: a cyclic repeat
                    if len(clip) >= seq_len:
                        break
                    clip.append(index)
            out.append(clip)
    assert all(len(c) == seq_len for c in out) and len(out) == -(-num_frames // seq_len)
    return out


@pytest.mark.parametrize("seq_len, stride", [(8, 4), (8, 2), (4, 1)])
def test_test_clips_equal_cals_rule_for_every_length(seq_len, stride):
    for n in range(1, 301):
        assert clips.test_clip_indices(n, seq_len, stride) == cal_recombination(
            n, seq_len, stride
        ), n


def test_test_clips_worked_example():
    # 29 frames, L = 4, s = 4: one block of 16 → 4 clips; 13 left → 3 clips at stride 3 over
    # frames 16…27; 29 mod 4 = 1 → the last frame, padded.
    assert clips.test_clip_indices(29, 4, 4) == [
        [0, 4, 8, 12],
        [1, 5, 9, 13],
        [2, 6, 10, 14],
        [3, 7, 11, 15],
        [16, 19, 22, 25],
        [17, 20, 23, 26],
        [18, 21, 24, 27],
        [28, 28, 28, 28],
    ]
    assert clips.test_clip_indices(3, 8, 4) == [[0, 1, 2, 0, 1, 2, 0, 1]]
    assert clips.test_clip_indices(0, 8, 4) == []
    with pytest.raises(ValueError, match="stride"):
        clips.test_clip_indices(10, 8, 0)


@pytest.mark.parametrize(
    "frames, expected",
    [
        (10, [(0, 10)]),
        (64, [(0, 64)]),
        (65, [(0, 65)]),  # one whole chunk plus a remainder: the last chunk keeps it
        (130, [(0, 64), (64, 130)]),
        (200, [(0, 64), (64, 128), (128, 200)]),
    ],
)
def test_dense_chunks_follow_cals_sampling_step(frames, expected):
    assert [(c.start, c.stop) for c in clips.dense_chunks(frames, 64)] == expected
    assert clips.dense_chunks(frames, 0) == [range(0, frames)]  # 0 = off
    with pytest.raises(ValueError, match=r"^sampling_step must be ≥ 0 \(got -1\)$"):
        clips.dense_chunks(frames, -1)


L = 4


@pytest.mark.parametrize("stride", [1, 2, 4])
@pytest.mark.parametrize(
    "num_frames", [1, 2, L - 1, L, L + 1, 2 * L - 1, 2 * L, 2 * L + 1, 4 * L, 4 * L + 1, 33]
)
def test_every_tracklet_gets_full_clips_that_use_each_frame(num_frames, stride):
    clips = test_clip_indices(num_frames, L, stride)
    assert clips, "a tracklet with frames must get at least one clip"
    assert all(len(clip) == L for clip in clips)
    assert len(clips) == -(-num_frames // L)  # ceil(n / L)
    assert sorted({i for clip in clips for i in clip}) == list(range(num_frames))
    # each frame once, except the loop padding of the one short clip at the end
    used = sorted(i for clip in clips[: num_frames // L] for i in clip)
    tail = num_frames % L
    assert used == sorted(set(range(num_frames)) - set(range(num_frames - tail, num_frames)))


def test_edges_by_hand():
    assert test_clip_indices(8, L, 2) == [[0, 2, 4, 6], [1, 3, 5, 7]]  # n mod L = 0
    assert test_clip_indices(9, L, 2) == [[0, 2, 4, 6], [1, 3, 5, 7], [8, 8, 8, 8]]  # mod = 1
    assert test_clip_indices(7, L, 2) == [[0, 1, 2, 3], [4, 5, 6, 4]]  # mod = L − 1
    assert test_clip_indices(1, L, 4) == [[0, 0, 0, 0]]  # one frame
    assert test_clip_indices(2, L, 4) == [[0, 1, 0, 1]]  # n < L
    assert test_clip_indices(13, L, 2) == [[0, 2, 4, 6], [1, 3, 5, 7], [8, 9, 10, 11], [12] * L]
    assert test_clip_indices(5, 1, 2) == [[0], [1], [2], [3], [4]]  # L = 1


def test_a_tracklet_without_frames_has_no_clip_and_bad_settings_are_refused():
    assert test_clip_indices(0, L, 4) == [] and test_clip_indices(0, 1, 1) == []
    for seq_len, stride in ((0, 4), (4, 0)):
        with pytest.raises(ValueError, match="seq_len and stride"):
            test_clip_indices(5, seq_len, stride)


def test_loop_pad_repeats_from_the_start_and_refuses_an_empty_clip():
    assert loop_pad([3, 4, 5], 7) == [3, 4, 5, 3, 4, 5, 3]
    assert loop_pad([3, 4], 2) == [3, 4]
    assert loop_pad([3, 4, 5], 2) == [3, 4, 5]  # never shortens
    with pytest.raises(ValueError, match="^cannot pad an empty clip$"):
        loop_pad([], 4)


def test_training_clip_of_a_tracklet_without_frames_is_an_error():
    with pytest.raises(ValueError, match="^a tracklet with no frames has no clip$"):
        training_clip(0, 4, 2, np.random.default_rng(0))
    assert training_clip(4, 4, 0, np.random.default_rng(0)) == [0, 1, 2, 3]  # stride < 1 → 1

"""The evaluation clips at the edges (CAL's rule, `test_clip_indices`, as the evaluator uses it):
n mod L = 0, 1 and L − 1, a 1-frame tracklet, n < L — every tracklet gets full clips that use each
of its frames. CAL equality over n = 1…300 and the training clips are in test_data.py."""

import numpy as np
import pytest

from pipeline.data.clips import loop_pad, test_clip_indices, training_clip

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
    assert test_clip_indices(0, L, 4) == []
    for seq_len, stride in ((0, 4), (4, 0)):
        with pytest.raises(ValueError, match="seq_len and stride"):
            test_clip_indices(5, seq_len, stride)


def test_loop_pad_repeats_from_the_start_and_refuses_an_empty_clip():
    assert loop_pad([3, 4, 5], 7) == [3, 4, 5, 3, 4, 5, 3]
    assert loop_pad([3, 4], 2) == [3, 4]
    assert loop_pad([3, 4, 5], 2) == [3, 4, 5]  # never shortens
    with pytest.raises(ValueError, match="empty"):
        loop_pad([], 4)


def test_training_clip_of_a_tracklet_without_frames_is_an_error():
    with pytest.raises(ValueError, match="no frames"):
        training_clip(0, 4, 2, np.random.default_rng(0))
    assert training_clip(4, 4, 0, np.random.default_rng(0)) == [0, 1, 2, 3]  # stride < 1 → 1

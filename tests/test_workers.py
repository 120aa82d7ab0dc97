"""The worker pool (`pipeline.workers`): batching and streaming results back from processes."""

from __future__ import annotations

import os

import pytest

from pipeline.errors import StageError
from pipeline.workers import make_batches, stream_unordered, worker_count


def test_batches_cover_every_item_in_order_and_shrink_towards_the_end():
    batches = make_batches(list(range(32)), [24] * 32, workers=2)
    assert [item for batch in batches for item in batch] == list(range(32))
    # each takes ~1/4 of the frames still left: 768 / 4 = 192 frames = 8 tracklets, then 6, …
    assert [len(b) for b in batches] == [8, 6, 5, 4, 3, 2, 1, 1, 1, 1]


def test_batches_are_capped_for_crash_safety_and_sized_by_frames():
    batches = make_batches(list(range(800)), [32] * 800, workers=2)
    assert max(sum(32 for _ in b) for b in batches) <= 1504  # MAX_BATCH_FRAMES, one item over
    assert [len(b) for b in batches][:2] == [47, 47] and [len(b) for b in batches][-3:] == [1] * 3
    # sized by frames, not items: targets ceil(65 / 2) = 33, then 5 (of 10 left), then 3
    assert make_batches(list("abcd"), [5, 50, 5, 5], workers=1) == [["a", "b"], ["c"], ["d"]]


def _square_all(batch, offset, parent_pid):
    return [(x * x + offset, os.getpid(), parent_pid) for x in batch]


def test_every_batch_comes_back_once_from_worker_processes():
    results = list(
        stream_unordered(_square_all, lambda slots: [[1, 2], [3], [4, 5, 6]], args=(10,), workers=2)
    )
    assert sorted(x for batch in results for x, _, _ in batch) == [11, 14, 19, 26, 35, 46]
    # the tasks ran in other processes and were told who their parent is
    assert {parent for batch in results for _, _, parent in batch} == {os.getpid()}
    assert os.getpid() not in {pid for batch in results for _, pid, _ in batch}


def test_an_unknown_backend_is_one_clear_error():
    with pytest.raises(StageError, match="unknown — use one of loky, dask"):
        list(stream_unordered(_square_all, lambda slots: [[1]], (0,), backend="spark"))


def test_worker_count_zero_means_every_usable_core():
    assert worker_count(3) == 3
    assert worker_count(0) == len(os.sched_getaffinity(0))

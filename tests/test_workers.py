"""The worker pool (`pipeline.workers`): batching and streaming results back from processes."""

from __future__ import annotations

import os

import pytest

from pipeline.errors import StageError
from pipeline.workers import make_batches, stream_unordered, worker_count


def test_batches_cover_every_item_in_order():
    sizes = [5, 50, 5, 5, 5, 5, 5, 5, 5, 5]
    batches = make_batches(list(range(10)), sizes, workers=2)  # target ceil(95 / 8) = 12
    assert [item for batch in batches for item in batch] == list(range(10))
    assert [len(b) for b in batches] == [2, 3, 3, 2]


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

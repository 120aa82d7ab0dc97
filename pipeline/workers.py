"""The worker pool, and worker processes that do not outlive the process that started them.

`stream_unordered(task, batches, …)` runs `task(batch, *args)` for every batch in joblib workers
(local loky processes, or the threads of a Dask cluster) and yields the results as they finish,
with only a bounded number of batches in flight, so memory does not grow with the data set; the
caller stays the single writer. `make_batches` cuts the work so that the last batches are small
and the workers finish together.

joblib's local (loky) workers wait for work from their parent; when the parent is killed with
SIGKILL nobody tells them, and they went on running (measured: 2 MediaPipe workers, ~640 MB,
still alive 11 minutes after `kill -9` of preprocess). A task calls `exit_with_parent(pid)`
first; a daemon thread then ends the worker within a second of the parent's death.
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from pipeline.errors import StageError

POLL_SECONDS = 0.5
BACKENDS = ("loky", "dask")
MAX_BATCH_FRAMES = 1500  # ≈ 35 s of MediaPipe per batch: little lost on a kill, little overhead

Item = TypeVar("Item")


def worker_count(requested: int) -> int:
    """`requested` workers, or every core this process may run on when 0."""
    if requested > 0:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def make_batches(items: Sequence[Item], sizes: Sequence[int], workers: int) -> list[list[Item]]:
    """Consecutive items in batches that shrink as the work runs out ("guided" scheduling): each
    batch takes about 1 / (2 · workers) of the size still left (at most 1500), down to one item.
    Big batches first keep the per-batch cost low (a MediaPipe graph per batch, a part file);
    small ones last let workers that started late or ran slower finish with the others."""
    batches: list[list[Item]] = []
    current: list[Item] = []
    left, size = sum(sizes), 0
    target = _batch_target(left, workers)
    for item, item_size in zip(items, sizes):
        current.append(item)
        size += item_size
        if size >= target:
            batches.append(current)
            left -= size
            current, size = [], 0
            target = _batch_target(left, workers)
    if current:
        batches.append(current)
    return batches


def _batch_target(left: int, workers: int) -> int:
    return max(1, min(MAX_BATCH_FRAMES, math.ceil(left / (2 * max(1, workers)))))


def stream_unordered(
    task: Callable[..., Any],
    batches: Callable[[int], list[list[Item]]],
    args: tuple = (),
    workers: int = 1,
    backend: str = "loky",
    scheduler: str = "",
) -> Iterator[Any]:
    """`task(batch, *args, parent_pid)` for every batch of `batches(slots)` (`slots`: how many
    tasks run at once, known only once the cluster answers), results yielded as they finish.
    A local worker ends when this process dies (`parent_pid`); Dask's have other parents."""
    from joblib import Parallel, delayed, parallel_config

    if backend == "loky":
        parent = os.getpid()
        parallel = Parallel(
            n_jobs=workers, return_as="generator_unordered", pre_dispatch="2*n_jobs"
        )
        with warnings.catch_warnings():
            # A run stopped by an error (e.g. a full disk) already says so in one line.
            warnings.filterwarnings("ignore", message=".*still being processed by the workers")
            yield from parallel(delayed(task)(b, *args, parent) for b in batches(workers))
        return
    if backend != "dask":
        raise StageError(f"backend {backend!r} is unknown — use one of {', '.join(BACKENDS)}")
    client = _dask_client(scheduler)
    # The cluster's threads are the workers; what the tasks read must be readable there too.
    with client, parallel_config(backend="dask"):
        slots = max(1, sum(client.nthreads().values()))
        parallel = Parallel(n_jobs=-1, return_as="generator_unordered", pre_dispatch="2*n_jobs")
        yield from parallel(delayed(task)(b, *args, None) for b in batches(slots))


def _dask_client(scheduler: str):
    try:
        from distributed import Client
    except ImportError:
        raise StageError(
            "`preprocess.backend` dask needs the 'distributed' package: pip install "
            "'dask[distributed]'"
        ) from None
    try:
        return Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as error:
        raise StageError(
            f"cannot reach the Dask scheduler at {scheduler} ({error}) — start one "
            "(`dask scheduler`) or fix `preprocess.scheduler`"
        ) from None


def exit_with_parent(parent_pid: int | None) -> None:
    """In a worker started by process `parent_pid`: exit as soon as that parent is gone (this
    process is then re-parented). No-op in the parent itself (joblib ran the task in-process)
    or with None (remote workers, e.g. Dask's, have other parents). Starts one watcher thread
    per process, found again by its name."""
    if parent_pid is None or parent_pid == os.getpid():
        return
    name = f"exit-with-parent-{parent_pid}"
    if any(thread.name == name for thread in threading.enumerate()):
        return
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent died before this task started
    threading.Thread(target=_watch, args=(parent_pid,), name=name, daemon=True).start()


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    # Not sys.exit: the main thread may be deep in MediaPipe; nothing here needs cleaning up
    # (workers write no files; their results had nowhere to go).
    os._exit(1)

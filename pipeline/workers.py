"""Worker processes that do not outlive the process that started them.

joblib's local (loky) workers wait for work from their parent; when the parent is killed with
SIGKILL nobody tells them, and they went on running (measured: 2 MediaPipe workers, ~640 MB,
still alive 11 minutes after `kill -9` of preprocess). A task calls `exit_with_parent(pid)`
first; a daemon thread then ends the worker within a second of the parent's death.
"""

from __future__ import annotations

import os
import threading
import time

POLL_SECONDS = 0.5


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

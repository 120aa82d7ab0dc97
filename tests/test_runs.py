"""The run folder's lock and its clean-up of a killed writer's temporaries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.errors import StageError
from pipeline.runs import RunFolder

REPO = Path(__file__).resolve().parents[1]


def hold_lock_in_another_process(folder: Path) -> subprocess.Popen:
    script = (
        "import sys, time\n"
        "from pipeline.runs import RunFolder\n"
        f"with RunFolder({str(folder)!r}).lock('train'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_writer_is_refused_and_a_killed_holder_frees_the_run(tmp_path):
    # Two `train --run ct` both "succeeded" into one folder: config.toml from one, last.pt
    # from the other.
    folder = RunFolder(tmp_path / "runs" / "ct")
    child = hold_lock_in_another_process(folder.path)
    try:
        with pytest.raises(StageError) as caught:
            with folder.lock("evaluate"):
                pass
        message = str(caught.value)
        assert f"run folder {folder.path} is in use by another process" in message
        assert f"asgl-pipeline train (pid {child.pid})" in message
        assert not folder.path.exists()  # the refused writer created nothing
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    with folder.lock("train"):  # the kernel dropped the dead holder's lock
        assert folder.lock_file.is_file()
    assert not folder.lock_file.exists()  # and the lock file goes with the holder


def test_taking_the_lock_deletes_a_killed_writers_temporaries(tmp_path):
    folder = RunFolder(tmp_path / "r")
    checkpoints = folder.last_checkpoint.parent
    checkpoints.mkdir(parents=True)
    folder.last_checkpoint.write_bytes(b"the last good checkpoint")
    left = [
        checkpoints / ".last.pt.k2j3.tmp",
        checkpoints / ".best.pt.x9.tmp",
        folder.path / ".metrics.json.a1.tmp",
    ]
    for path in left:
        path.write_bytes(b"half a file")
    with folder.lock("train"):
        assert not any(path.exists() for path in left)
    assert folder.last_checkpoint.read_bytes() == b"the last good checkpoint"


def test_the_lock_is_held_for_the_whole_block(tmp_path):
    folder = RunFolder(tmp_path / "r")
    with folder.lock("train"):
        started = time.monotonic()
        with pytest.raises(StageError, match="in use by another process"):
            with RunFolder(tmp_path / "r").lock("embed"):
                pass
        assert time.monotonic() - started < 5  # refused at once, never waits

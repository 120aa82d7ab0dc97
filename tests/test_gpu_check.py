"""tools/gpu_check.sh (`make gpu-check`): refuses in one line without CUDA, and its steps run and
leave their figures where it says (GPU_CHECK_SMOKE=1: the same steps on the CPU at toy sizes)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "gpu_check.sh"


def run_script(out: Path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHON": sys.executable, **env}
    return subprocess.run(
        ["bash", str(SCRIPT), str(out)], capture_output=True, text=True, env=environment
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this host has CUDA: the script would run")
def test_without_cuda_it_refuses_in_one_line_and_runs_nothing(tmp_path):
    done = run_script(tmp_path / "out", GPU_CHECK_WORK=str(tmp_path / "work"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "no CUDA device here" in done.stderr and "run it on a GPU host" in done.stderr
    assert not (tmp_path / "work").exists() and list((tmp_path / "out").iterdir()) == []


def test_smoke_run_writes_every_figure(tmp_path):
    out = tmp_path / "out"
    done = run_script(out, GPU_CHECK_SMOKE="1", GPU_CHECK_WORK=str(tmp_path / "work"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = (out / "summary.txt").read_text()
    for step in ("bench, CUDA section", "synth", "preprocess (groundtruth)", "train + evaluate"):
        assert f"{step}" in summary
    bench = (out / "bench.md").read_text()
    assert "training step (cuda, AMP)" in bench or "no CUDA device" in bench
    with open(out / "train_log.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and set(metrics["settings"]) == {"standard", "cc", "sc"}
    assert "figures in" in summary.splitlines()[-1]

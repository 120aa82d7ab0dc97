"""Writing a planned synthetic set: every tracklet rendered by the worker pool into a staging
folder, the split files, metadata, configuration and summary beside them (with MediaPipe's
detection rate and accuracy on a sample of tracklets), and the finished set moved into place."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from joblib import Parallel, delayed

from pipeline.config import Config, save_config
from pipeline.io import atomic_write_json, atomic_write_text
from pipeline.synth.accuracy import measure_tracklets, summarise
from pipeline.synth.layout import (
    GT_FILE,
    by_camera,
    metadata,
    render_batch,
    split_lines,
)
from pipeline.workers import exit_with_parent, make_batches, stream_unordered

SUMMARY_FILE = "synth_summary.json"
META_FILE = "synth_meta.json"


def replace_set(staging: Path, out: Path) -> None:
    """Move the finished set into place; an old set is renamed away first, then deleted."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / out.name)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _render(specs, plan, staging: Path, parent_pid: int) -> int:
    """A worker's task; the worker ends when the synth process that started it dies."""
    exit_with_parent(parent_pid)
    return render_batch(plan, specs, staging)


def _pose_check(plan, root: Path, count: int, workers: int, verbose: bool) -> dict | None:
    """MediaPipe detection and PA-MPJPE on `count` tracklets spread evenly over yaw."""
    if count == 0:
        return None
    by_yaw = sorted(plan.tracklets, key=lambda t: (t.view.yaw, t.key))
    count = min(count, len(by_yaw))
    picks = [by_yaw[round(i * (len(by_yaw) - 1) / max(count - 1, 1))] for i in range(count)]
    picks = list({t.key: t for t in picks}.values())
    started = time.perf_counter()
    jobs = max(1, min(workers, len(picks)))
    chunks = [picks[i::jobs] for i in range(jobs)]
    parts = Parallel(n_jobs=jobs)(
        delayed(measure_tracklets)([root / t.key for t in chunk], GT_FILE, verbose)
        for chunk in chunks
    )
    order = [t for chunk in chunks for t in chunk]
    results = [r for part in parts for r in part]
    summary = summarise(results, [t.view.yaw for t in order])
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["keys"] = sorted(t.key for t in order)
    return summary


def write_set(config: Config, plan, staging: Path, workers: int) -> dict:
    """Render every tracklet into `staging`, then the split files, meta, config and summary."""
    settings = config.synth
    started = time.perf_counter()
    specs = by_camera(plan)
    sizes = [plan.frames] * len(specs)
    for _ in stream_unordered(
        _render,
        lambda slots: make_batches(specs, sizes, slots),
        (plan, staging),
        workers=min(workers, len(specs)),
    ):
        pass
    render_seconds = time.perf_counter() - started
    for name, text in split_lines(plan).items():
        atomic_write_text(staging / name, text)
    atomic_write_json(staging / META_FILE, metadata(plan))
    save_config(config, staging / "config.toml")
    summary = {
        "identities": settings.identities,
        "train_identities": len(plan.train_pids),
        "test_identities": len(plan.test_pids),
        "outfits_per_identity": settings.outfits,
        "tracklets": {
            s: sum(t.split == s for t in plan.tracklets) for s in ("train", "query", "gallery")
        },
        "frames": len(plan.tracklets) * settings.frames,
        "frame_size": [settings.width, settings.height],
        "cameras": sorted({t.camera for t in plan.tracklets}),
        "seed": settings.seed,
        "occlusion": settings.occlusion,
        "render_seconds": round(render_seconds, 1),
        "workers": workers,
        "pose_check": _pose_check(
            plan, staging, settings.check_tracklets, workers, config.preprocess.verbose
        ),
    }
    atomic_write_json(staging / SUMMARY_FILE, summary)
    return summary

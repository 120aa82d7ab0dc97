"""`asgl-pipeline pose-error --cache EST.h5 --truth GT.h5`: where a pose estimator loses identity
(pipeline/pose_error.py) — the error of every tracklet split into bias, drift and jitter per
joint, how far body and gait quantities follow the truth across tracklets and between identities
(ICC), and checks of our own path. Writes `<paths.reports_dir>/pose_error_<cache stem>.json`.

With `--control COMPONENT --out CTRL.h5` it also writes a noise-model control: the truth cache
with that one measured component of the estimate's error added back, ready for `probe` and
`train` like any other cache.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.cache import SkeletonCache
from pipeline.errors import StageError
from pipeline.io import atomic_write_json
from pipeline.pose_error import (
    CONTROL_COMPONENTS,
    decompose,
    format_decomposition,
    read_pairs,
    write_control,
)


def report_path(cache: str | Path, reports_dir: str | Path) -> Path:
    return Path(reports_dir) / f"pose_error_{Path(cache).stem}.json"


def _check(options) -> None:
    if not options.truth:
        raise StageError(
            "pose-error needs the set's ground-truth cache — pass --truth GT.h5 (built with "
            "`asgl-pipeline preprocess --pose-source groundtruth`)"
        )
    if options.control and options.control not in CONTROL_COMPONENTS:
        raise StageError(
            f"unknown control {options.control!r} — use one of {', '.join(CONTROL_COMPONENTS)}"
        )
    if options.control and not options.out:
        raise StageError("--control needs --out CTRL.h5, the control cache to write")


def run(config, log: Callable[[str], None] = print) -> dict:
    options = config.pose_error
    _check(options)
    with SkeletonCache(config.data.cache) as estimate, SkeletonCache(options.truth) as truth:
        try:
            pairs = read_pairs(estimate, truth)
            record = decompose(pairs, options.window)
        except ValueError as error:
            raise StageError(f"pose-error: {error}") from None
        record.update(estimate=str(config.data.cache), truth=str(options.truth))
        out = report_path(config.data.cache, config.paths.reports_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out, record)
        log(
            f"pose-error: {len(pairs)} tracklets of {record['identities']} identities, "
            f"{config.data.cache} against {options.truth}"
        )
        log(format_decomposition(record))
        log(f"pose-error: → {out}")
        if options.control:
            count = write_control(pairs, options.control, truth, Path(options.out), options.seed)
            log(f"pose-error: control '{options.control}' ({count} tracklets) → {options.out}")
            record["control"] = {"component": options.control, "cache": options.out}
    return record

"""`asgl-pipeline evaluate --run NAME`: score a trained run on its dataset's query/gallery split
(SPEC §7) and write `metrics.json` + `features.npz` into the run folder (contracts in
docs/ARCHITECTURE.md). The train stage evaluates the same way (`pipeline.evaluation`) after training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from pipeline.data.frames import attach_frame_cache
from pipeline.data.splits import load_splits
from pipeline.evaluation import evaluate_model
from pipeline.runs import RunFolder


def run(config, log: Callable[[str], None] = print) -> dict:
    """Evaluate the run `train.run` (a name under `paths.runs_dir`, or a path) with the
    configuration it was trained with."""
    folder = RunFolder.resolve(config.train.run, config.paths.runs_dir)
    folder.require_trained()  # before the lock, which would create the runs folder
    with folder.lock("evaluate"):
        return _evaluate(config, folder, log)


def _evaluate(config, folder: RunFolder, log: Callable[[str], None]) -> dict:
    trained = folder.load_model(config.train.device)
    # The run decides what was trained; this invocation decides where it runs, the run's name
    # and where decoded frames may be kept (the same pixels either way).
    run_config = dataclasses.replace(
        trained.config,
        data=dataclasses.replace(
            trained.config.data,
            frame_cache=config.data.frame_cache,
            frame_cache_gb=config.data.frame_cache_gb,
        ),
        train=dataclasses.replace(
            trained.config.train, device=config.train.device, run=config.train.run
        ),
        paths=config.paths,
    )
    model_cfg = run_config.model
    splits = load_splits(run_config, model_cfg.uses_skeleton, splits=("query", "gallery"), log=log)
    splits = attach_frame_cache(run_config, splits, log)
    return evaluate_model(
        run_config,
        trained.model,
        splits,
        folder,
        trained.device,
        trained.epochs,
        trained.selection,
        log,
    )

"""Measured run folders (`cache/runs/<name>/`, contract in docs/ARCHITECTURE.md) as the report
reads them: metrics.json is required, config.toml / train_log.csv / features.npz are optional."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Config, ConfigError, load_config_file
from pipeline.reporting.paper_results import PAPER_DATASETS
from pipeline.reporting.variants import Variant
from pipeline.runs import METRICS_FILE, RunFolder


def source_words(pose_source: str) -> str:
    """How a skeleton source reads in a caveat or label: "groundtruth skeletons", or "skeleton
    files" for a skeleton dataset's own joints (no frames, no pose estimation)."""
    return "skeleton files" if pose_source == "skeletons" else f"{pose_source} skeletons"


@dataclass(frozen=True)
class MeasuredRun:
    name: str
    folder: Path
    metrics: dict[str, Any]
    variant: Variant  # canonical (see Variant.canonical)
    dataset: str  # label: "VCCR" / "CCVID" for the real sets, else the data root's folder name
    config: Config | None  # None when config.toml is missing or unreadable

    @property
    def is_paper_dataset(self) -> bool:
        return self.dataset in PAPER_DATASETS

    @property
    def profile(self) -> str:
        return str(self.metrics.get("profile", "unknown"))

    @property
    def date(self) -> str:
        return str(self.metrics.get("date", "unknown date"))

    @property
    def pose_source(self) -> str:
        """Where the run's skeletons came from: "mediapipe" (as the paper) or "groundtruth"."""
        return str((self.metrics.get("skeletons") or {}).get("pose_source") or "mediapipe")

    @property
    def held_out_validation(self) -> bool:
        """Trained with `select = "val"`: some training identities were kept out for validation."""
        return (self.metrics.get("selection") or {}).get("rule") == "val"

    @property
    def is_paper_setup(self) -> bool:
        """MediaPipe skeletons and every training identity, as the paper trains."""
        return self.pose_source == "mediapipe" and not self.held_out_validation

    @property
    def provenance(self) -> str:
        caveats = [
            text
            for applies, text in (
                (self.pose_source != "mediapipe", source_words(self.pose_source)),
                (self.held_out_validation, "validation identities held out of training"),
            )
            if applies
        ]
        return (
            f"measured: {self.dataset} / run {self.name} / profile {self.profile} / {self.date}"
            + "".join(f" / {caveat}" for caveat in caveats)
        )

    @property
    def backbone_weights(self) -> str:
        return str(self.metrics.get("backbone_weights") or "")

    def value(self, setting: str, metric: str) -> float | None:
        """A percentage from metrics.json, or None when that setting/metric was not measured."""
        value = (self.metrics.get("settings", {}).get(setting) or {}).get(metric)
        return None if value is None else float(value)

    def interval(self, setting: str, metric: str) -> list[float] | None:
        """The 95 % bootstrap interval [low, high] from metrics.json (None for older runs)."""
        setting_metrics = self.metrics.get("settings", {}).get(setting) or {}
        interval = (setting_metrics.get("intervals") or {}).get(metric)
        return [float(v) for v in interval] if interval else None

    def chance(self, setting: str, metric: str) -> float | None:
        """The measured chance level of the run's test set (None for older runs)."""
        value = ((self.metrics.get("settings", {}).get(setting) or {}).get("chance") or {}).get(
            metric
        )
        return None if value is None else float(value)

    def queries(self, setting: str) -> int:
        return int((self.metrics.get("settings", {}).get(setting) or {}).get("queries") or 0)

    def cmc(self, setting: str) -> list[float]:
        return [
            float(v) for v in (self.metrics.get("settings", {}).get(setting) or {}).get("cmc", [])
        ]

    def data_location(self) -> tuple[str, str, str]:
        """(adapter, root, manifest) of the data the run was trained on."""
        if self.config is not None:
            return self.config.data.dataset, self.config.data.root, self.config.data.manifest
        return str(self.metrics.get("dataset", "")), str(self.metrics.get("data_root", "")), ""

    def load_features(self) -> dict[str, np.ndarray] | None:
        """features.npz's arrays, or None when it is missing or unreadable."""
        return RunFolder(self.folder).read_features()

    def train_log(self) -> list[dict[str, float]]:
        """Rows of train_log.csv as floats ([] when missing)."""
        path = RunFolder(self.folder).train_log
        if not path.is_file():
            return []
        with path.open(newline="") as handle:
            return [
                {key: float(value) for key, value in row.items() if key and value not in ("", None)}
                for row in csv.DictReader(handle)
            ]


def dataset_label(adapter: str, data_root: str) -> str:
    """Name a measured dataset. A run counts as the paper's CCVID / VCCR only when it used that
    adapter on a root named after it; anything else (the synthetic set is CCVID-layout but not
    CCVID) is named by its root folder, so its numbers never land in the real-dataset columns."""
    root_name = Path(data_root.rstrip("/\\")).name if data_root else ""
    adapter = adapter.lower()
    lowered = root_name.lower()
    if adapter in ("ccvid", "vccr") and adapter in lowered and "synth" not in lowered:
        return adapter.upper()
    return root_name or adapter or "unknown"


def load_run(folder: Path) -> MeasuredRun:
    """Read one run folder; raises ValueError with the reason when metrics.json is unusable."""
    run = RunFolder(folder)
    metrics_path = run.metrics_file
    metrics = run.read_metrics()
    if not isinstance(metrics, dict) or not isinstance(metrics.get("settings"), dict):
        raise ValueError(f"{metrics_path} has no 'settings' object")
    try:
        variant = Variant.from_mapping(metrics.get("variant") or {}).canonical()
    except ValueError as error:
        raise ValueError(f"{metrics_path}: {error}") from None
    config = None
    if run.config_file.is_file():
        try:
            config = load_config_file(run.config_file)
        except ConfigError:
            config = None
    return MeasuredRun(
        name=folder.name,  # the folder is what the user finds; metrics["run"] names it too
        folder=folder,
        metrics=metrics,
        variant=variant,
        dataset=dataset_label(str(metrics.get("dataset", "")), str(metrics.get("data_root", ""))),
        config=config,
    )


def discover_runs(runs_dir: str | Path) -> tuple[list[MeasuredRun], list[str]]:
    """Every finished run under `runs_dir` (sorted by folder name) and notes on skipped folders."""
    runs_dir = Path(runs_dir)
    runs: list[MeasuredRun] = []
    notes: list[str] = []
    if not runs_dir.is_dir():
        return runs, [f"no runs folder at {runs_dir}: every measured cell says 'not measured'"]
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if not RunFolder(folder).is_evaluated():
            notes.append(f"run folder {folder.name} has no {METRICS_FILE} (unfinished?): skipped")
            continue
        try:
            runs.append(load_run(folder))
        except ValueError as error:
            notes.append(f"run folder {folder.name} skipped: {error}")
    return runs, notes


def latest_run(runs, variant) -> MeasuredRun | None:
    """The run of `variant` a plot bar and an ordering verdict speak for (a table lists every
    run): one set up as the paper's (MediaPipe skeletons, all training identities) before a
    ground-truth or validation-split run of the same variant, then the most recent (by date, then
    name)."""
    matching = sorted(
        (r for r in runs if r.variant == variant), key=lambda r: (r.is_paper_setup, r.date, r.name)
    )
    return matching[-1] if matching else None


def file_slug(name: str) -> str:
    """`name` as a safe part of a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


@dataclass(frozen=True)
class RunGroup:
    """Runs whose numbers can be compared: one dataset, one profile, one skeleton source."""

    dataset: str
    profile: str
    pose_source: str
    runs: tuple[MeasuredRun, ...]

    @property
    def label(self) -> str:
        text = f"{self.dataset} / profile {self.profile}"
        return (
            text
            if self.pose_source == "mediapipe"
            else f"{text} / {source_words(self.pose_source)}"
        )

    @property
    def slug(self) -> str:
        parts = (self.dataset, self.profile) + (
            () if self.pose_source == "mediapipe" else (self.pose_source,)
        )
        return "_".join(file_slug(part) for part in parts)


def comparable_groups(runs: Sequence[MeasuredRun]) -> list[RunGroup]:
    """`runs` split by (dataset, profile, skeleton source), sorted: each ablation plot and each
    set of ordering verdicts speaks for one group (ground-truth skeletons are the positive
    control, never mixed with MediaPipe runs)."""
    keys = sorted({(r.dataset, r.profile, r.pose_source) for r in runs})
    return [
        RunGroup(*key, tuple(r for r in runs if (r.dataset, r.profile, r.pose_source) == key))
        for key in keys
    ]

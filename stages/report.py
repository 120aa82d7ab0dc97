"""The `report` stage: Tables 1–5 (CSV + Markdown), plots and `reports/README.md` from every run
folder in `paths.runs_dir`. Works with any subset of runs, including none; running it twice gives
the same bytes. A plot whose inputs are missing is skipped with a note, the tables are still
written."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.io import atomic_write_text, read_npz
from pipeline.metrics import SETTINGS
from pipeline.reporting import plots
from pipeline.reporting.frames import TrackletFrames, open_frames, skeleton_panels
from pipeline.reporting.measured import MeasuredRun, comparable_groups, discover_runs, file_slug
from pipeline.reporting.pose_gap import build_pose_gap_table
from pipeline.reporting.ranklist import cc_rank_lists
from pipeline.reporting.readme import compose_readme
from pipeline.reporting.tables import (
    ABLATION_PANELS,
    ABLATION_TABLES,
    ablation_bars,
    build_tables,
    panel_name,
)
from pipeline.runs import RunFolder
from stages import StageError

PLOTS_FOLDER = "plots"
RANK_QUERIES = 4
RANK_TOP_K = 10


@dataclass(frozen=True)
class ReportResult:
    out: Path
    files: tuple[Path, ...]
    runs: tuple[str, ...]
    notes: tuple[str, ...]


class _FrameSources:
    """Opens each dataset's frames once per report, whichever runs share it."""

    def __init__(self):
        self._opened: dict[tuple[str, str, str], tuple[TrackletFrames | None, str]] = {}

    def get(self, run: MeasuredRun) -> tuple[TrackletFrames | None, str]:
        location = run.data_location()
        if location not in self._opened:
            self._opened[location] = open_frames(*location)
        return self._opened[location]


def _run_plots(run: MeasuredRun, folder: Path, frames: _FrameSources, notes: list[str]):
    """Write the plots of one run; return [(label, file)]."""
    written = []
    slug = file_slug(run.name)
    curves = {s: run.cmc(s) for s in SETTINGS if run.cmc(s)}
    if curves:
        path = plots.cmc_plot(
            f"CMC — {run.name} ({run.dataset})", curves, folder / f"cmc_{slug}.png"
        )
        written.append(("CMC curves", path))
    else:
        notes.append(f"run {run.name}: metrics.json has no CMC lists; CMC plot skipped")
    try:
        log = run.train_log()
    except (OSError, ValueError) as error:
        log, reason = [], f"train_log.csv unreadable ({error})"
    else:
        reason = "no train_log.csv rows"
    if log:
        path = plots.training_plot(run.name, log, folder / f"training_{slug}.png")
        written.append(("training curves", path))
    else:
        notes.append(f"run {run.name}: {reason}; training-curve plot skipped")
    path = _rank_grid(run, folder / f"ranklist_{slug}.png", frames, notes)
    if path is not None:
        written.append(("CC rank lists", path))
    return written


def _rank_grid(
    run: MeasuredRun, path: Path, frames: _FrameSources, notes: list[str]
) -> Path | None:
    features_path = RunFolder(run.folder).features_file
    if not features_path.is_file():
        notes.append(f"run {run.name}: no features.npz; rank-list grid skipped")
        return None
    try:
        ranked = cc_rank_lists(read_npz(features_path), RANK_QUERIES, RANK_TOP_K)
    except (KeyError, ValueError) as error:
        notes.append(f"run {run.name}: features.npz unusable ({error}); rank-list grid skipped")
        return None
    if not ranked:
        notes.append(f"run {run.name}: no query has a cloth-changing match; rank-list grid skipped")
        return None
    source, reason = frames.get(run)
    if source is None:
        notes.append(f"run {run.name}: rank-list grid skipped — {reason}")
        return None
    title = f"CC rank lists — {run.name} ({run.dataset})\ngreen = same person, red = another person"
    return plots.rank_grid(title, ranked, source.thumbnail, path)


def _skeleton_strips(
    runs, folder: Path, frames: _FrameSources, notes: list[str]
) -> dict[str, Path]:
    """One overlay strip per measured dataset, from the first run (by name) that names a cache."""
    strips: dict[str, Path] = {}
    for dataset in sorted({r.dataset for r in runs}):
        candidates = [r for r in runs if r.dataset == dataset and r.config is not None]
        if not candidates:
            notes.append(
                f"dataset {dataset}: no run has a config.toml naming its skeleton cache; "
                "skeleton overlay skipped"
            )
            continue
        run = candidates[0]
        source, reason = frames.get(run)
        if source is None:
            notes.append(f"dataset {dataset}: skeleton overlay skipped — {reason}")
            continue
        panels, reason = skeleton_panels(run.config.data.cache, source)
        if not panels:
            notes.append(f"dataset {dataset}: skeleton overlay skipped — {reason}")
            continue
        title = f"Skeleton overlays — {dataset} ({Path(run.config.data.cache).name})"
        strips[dataset] = plots.skeleton_strip(
            title, panels, folder / f"skeletons_{file_slug(dataset)}.png"
        )
    return strips


def _ablation_plots(runs, folder: Path, notes: list[str]) -> dict[str, Path]:
    """One bar plot per ablation table (3–5) and group of comparable runs."""
    made: dict[str, Path] = {}
    panels = [panel_name(s, m) for s, m in ABLATION_PANELS]
    for group in comparable_groups(runs):
        for number in ABLATION_TABLES:
            bars, chance = ablation_bars(number, group.runs)
            if len(bars) < 2:
                notes.append(
                    f"Table {number} plot for {group.label}: fewer than two of its "
                    "variants measured; skipped"
                )
                continue
            label = f"Table {number} variants, {group.label}"
            title = f"{label} (bars: 95 % intervals; dashed: chance)"
            path = folder / f"ablation_table{number}_{group.slug}.png"
            made[label] = plots.ablation_plot(title, bars, chance, panels, path)
    return made


def run(config, log: Callable[[str], None] = print) -> ReportResult:
    """Write the report into a staging folder beside `out`, then move it in: a report that
    fails (or is killed) half-way leaves the previous one as it was."""
    runs_dir = Path(config.paths.runs_dir)
    out = Path(config.paths.reports_dir)
    if out.exists() and not out.is_dir():
        raise StageError(f"report folder {out} is a file — pass a folder with --out")
    runs, notes = discover_runs(runs_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    for leftover in out.parent.glob(f".{out.name}.*.staging"):  # from a killed report
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".staging", dir=out.parent))
    try:
        tables, files = _write_report(runs, runs_dir, staging, notes, probes=out)
        written = _publish(staging, out, files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    plots_written = [path for path in written if path.suffix == ".png"]
    log(
        f"report: {len(tables)} tables, {len(plots_written)} plots from {len(runs)} run(s) → "
        f"{out}/README.md" + (f" ({len(notes)} notes there)" if notes else "")
    )
    return ReportResult(out, tuple(written), tuple(r.name for r in runs), tuple(notes))


def _write_report(runs, runs_dir: Path, out: Path, notes: list[str], probes: Path):
    """Tables, plots and README.md into `out`; returns (tables, files relative to `out`).
    `probes`: the folder `asgl-pipeline probe` wrote its probe_*.json into (Table 6 reads them)."""
    written: list[Path] = []
    tables = [*build_tables(runs), build_pose_gap_table(runs, probes)]
    for table in tables:
        written.append(atomic_write_text(out / f"table{table.number}.csv", table.to_csv()))
        written.append(atomic_write_text(out / f"table{table.number}.md", table.to_markdown()))

    plot_folder = out / PLOTS_FOLDER
    frames = _FrameSources()
    run_plots: dict[str, list[tuple[str, str]]] = {}
    plot_files: list[Path] = []
    for measured in runs:
        made = _run_plots(measured, plot_folder, frames, notes)
        plot_files += [path for _label, path in made]
        if made:
            run_plots[measured.name] = [
                (label, path.relative_to(out).as_posix()) for label, path in made
            ]
    strips = _skeleton_strips(runs, plot_folder, frames, notes)
    plot_files += strips.values()
    ablations = _ablation_plots(runs, plot_folder, notes)
    plot_files += ablations.values()

    readme = compose_readme(
        runs,
        tables,
        str(runs_dir),
        run_plots,
        {d: p.relative_to(out).as_posix() for d, p in strips.items()},
        notes,
        {label: p.relative_to(out).as_posix() for label, p in ablations.items()},
    )
    written.append(atomic_write_text(out / "README.md", readme))
    written += plot_files
    return tables, [path.relative_to(out) for path in written]


def _publish(staging: Path, out: Path, files: list[Path]) -> list[Path]:
    """Move the finished files into `out` (each rename is atomic; README.md goes last), and
    delete plots of runs that no longer exist, which would contradict the tables."""
    ordered = sorted(files, key=lambda f: f.name == "README.md")
    for relative in ordered:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / relative, target)
    plot_folder = out / PLOTS_FOLDER
    if plot_folder.is_dir():
        for stale in sorted(set(plot_folder.glob("*.png")) - {out / f for f in files}):
            stale.unlink()
    return [out / relative for relative in files]

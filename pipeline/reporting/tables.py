"""Tables 1–5 in the paper's layout: the published rows ("reported in paper") followed by the rows
measured by this pipeline, one per run folder whose variant fits the row ("measured: <dataset> /
run <name> / profile <p> / <date>"). A cell never measured says so; nothing is filled in.

Measured numbers go under the column group of the dataset the run was trained on. A dataset the
paper does not report (the synthetic set, own footage) gets its own clearly labelled column group
instead of borrowing the CCVID / VCCR columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.confidence import format_cell
from pipeline.reporting.measured import MeasuredRun, latest_run
from pipeline.reporting.paper_results import METRICS, PAPER_TABLES, SETTING_TITLES, PaperTable
from pipeline.reporting.plots import AblationBar
from pipeline.reporting.variants import (
    APPEARANCE_GAIT,
    APPEARANCE_ONLY,
    APPEARANCE_SHAPE,
    FULL,
    GCN,
    POSE_2D,
    SHAPE_GAIT,
    Variant,
)

PAPER_SOURCE = "reported in paper"
NOT_MEASURED = "not measured"
NOT_IN_PAPER = "not in paper"
NOT_REPORTED = "-"  # the paper's own mark for a cell it does not report
CHANCE_LABEL = "chance level (random ranking)"


@dataclass(frozen=True)
class MeasuredRowSpec:
    """Which runs fill a measured row: label cells as the table prints them, and the variant."""

    labels: tuple[str, ...]
    variant: Variant


MEASURED_ROWS: dict[int, tuple[MeasuredRowSpec, ...]] = {
    1: (MeasuredRowSpec(("ASGL (this pipeline)", "Video-based CC", "RGB + shape + gait"), FULL),),
    2: (MeasuredRowSpec(("ASGL (this pipeline)",), FULL),),
    3: (
        MeasuredRowSpec(("Texture branch (Appearance)",), APPEARANCE_ONLY),
        MeasuredRowSpec(("ASGL branch (Shape and Gait)",), SHAPE_GAIT),
        MeasuredRowSpec(("Appearance and Shape",), APPEARANCE_SHAPE),
        MeasuredRowSpec(("Appearance and Gait",), APPEARANCE_GAIT),
        MeasuredRowSpec(("Joint (the proposed ASGL)",), FULL),
    ),
    4: (MeasuredRowSpec(("GCN & ST-GCN",), GCN), MeasuredRowSpec(("GAT & ST-GAT",), FULL)),
    5: (
        MeasuredRowSpec(("ASGL w/ 2D pose",), POSE_2D),
        MeasuredRowSpec(("ASGL w/ 3D pose",), FULL),
    ),
}

# Tables 1 and 2 each compare methods on one real dataset; a run on the other one is shown in the
# other table rather than as an extra column group.
EXCLUDED_DATASETS: dict[int, tuple[str, ...]] = {1: ("CCVID",), 2: ("VCCR",)}


@dataclass(frozen=True)
class Table:
    number: int
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...]

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return buffer.getvalue()

    def to_markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        parts = [f"# Table {self.number}: {self.caption}", ""]
        parts += [f"- {note}" for note in self.notes]
        parts += ["", line(self.columns), "|" + "---|" * len(self.columns)]
        parts += [line(row) for row in self.rows]
        return "\n".join(parts) + "\n"


def format_value(value: float | None) -> str:
    return NOT_REPORTED if value is None else f"{value:.1f}"


def _column_name(group: str, setting: str, metric: str, prefixed: bool) -> str:
    name = f"{SETTING_TITLES[setting]} {metric}"
    return f"{group} {name}" if prefixed else name


def _train_hint(variant: Variant) -> str:
    if variant == FULL:
        return "asgl-pipeline train"
    return f"asgl-pipeline ablate {variant.cli_flags()}"


def build_table(paper: PaperTable, runs: Sequence[MeasuredRun]) -> Table:
    excluded = EXCLUDED_DATASETS.get(paper.number, ())
    specs = MEASURED_ROWS[paper.number]
    placed = {
        spec.labels: sorted(
            (r for r in runs if r.variant == spec.variant and r.dataset not in excluded),
            key=lambda r: (r.dataset, r.name),
        )
        for spec in specs
    }
    measured_datasets = {run.dataset for rows in placed.values() for run in rows}
    extra_groups = sorted(measured_datasets - set(paper.datasets))
    groups = list(paper.datasets) + extra_groups
    # A single-dataset paper table prints bare "CC R-1" headers; keep them, prefix any other group.
    prefix_paper_groups = len(paper.datasets) > 1
    value_keys = [(g, s, m) for g in groups for s in paper.settings for m in METRICS]
    columns = list(paper.label_columns)
    columns += [
        _column_name(g, s, m, prefixed=prefix_paper_groups or g not in paper.datasets)
        for g, s, m in value_keys
    ]
    columns.append("source")

    rows: list[tuple[str, ...]] = []
    for paper_row in paper.rows:
        cells = [
            format_value(paper.value(paper_row, g, s, m)) if g in paper.datasets else NOT_IN_PAPER
            for g, s, m in value_keys
        ]
        rows.append((*paper_row.labels, *cells, PAPER_SOURCE))
    for spec in specs:
        if not placed[spec.labels]:
            hint = (
                f"{NOT_MEASURED} (no run with this variant; train it: {_train_hint(spec.variant)})"
            )
            rows.append((*spec.labels, *[NOT_MEASURED] * len(value_keys), hint))
        for run in placed[spec.labels]:
            cells = []
            for g, s, m in value_keys:
                value = run.value(s, m) if g == run.dataset else None
                cells.append(format_cell(value, run.interval(s, m)))
            rows.append((*spec.labels, *cells, run.provenance))
    rows += _chance_rows(paper, placed, value_keys)

    notes = [
        f"Rows with source '{PAPER_SOURCE}' are the paper's published numbers "
        f"('{NOT_REPORTED}': not reported in the paper).",
        "Rows with source 'measured: …' come from this pipeline's run folders (metrics.json); "
        f"'{NOT_MEASURED}' marks a cell this pipeline has not measured. Numbers are percentages; "
        "a measured cell reads `value [low, high]`, its 95 % bootstrap interval over query "
        f"identities. The '{CHANCE_LABEL}' row is what random gallery rankings score on the "
        "same test set (measured, not assumed).",
    ]
    for group in extra_groups:
        notes.append(
            f"Columns prefixed '{group}' hold runs on the dataset in folder '{group}', which is not "
            f"one of the paper's datasets (a synthetic set may use the CCVID layout but is not "
            f"CCVID); '{NOT_IN_PAPER}' marks the paper's rows there."
        )
    return Table(paper.number, paper.caption, tuple(columns), tuple(rows), tuple(notes))


def _chance_rows(paper: PaperTable, placed, value_keys) -> list[tuple[str, ...]]:
    """One row per measured dataset: what a random ranking scores on its test set (measured)."""
    by_dataset: dict[str, MeasuredRun] = {}
    for run in sorted((r for rows in placed.values() for r in rows), key=lambda r: r.name):
        if run.chance("cc", "R-1") is not None:
            by_dataset.setdefault(run.dataset, run)
    rows = []
    for dataset, run in sorted(by_dataset.items()):
        cells = [
            format_value(run.chance(s, m)) if g == dataset else NOT_MEASURED
            for g, s, m in value_keys
        ]
        labels = (CHANCE_LABEL, *[""] * (len(paper.label_columns) - 1))
        source = f"measured: {dataset} test set / mean of random gallery rankings (run {run.name})"
        rows.append((*labels, *cells, source))
    return rows


def build_tables(runs: Sequence[MeasuredRun]) -> list[Table]:
    return [build_table(paper, runs) for paper in PAPER_TABLES]


ABLATION_TABLES = (3, 4, 5)
ABLATION_PANELS = (("cc", "R-1"), ("cc", "mAP"), ("standard", "R-1"), ("standard", "mAP"))


def panel_name(setting: str, metric: str) -> str:
    return f"{SETTING_TITLES[setting]} {metric}"


def ablation_bars(number: int, runs: Sequence[MeasuredRun]) -> tuple[list, dict[str, float]]:
    """The bars of table `number`'s plot for runs of one dataset and profile: one per measured row
    (its most recent run), and the test set's measured chance level per panel."""
    bars, chance = [], {}
    for spec in MEASURED_ROWS[number]:
        run = latest_run(runs, spec.variant)
        if run is None:
            continue
        values = {}
        for setting, metric in ABLATION_PANELS:
            value, interval = run.value(setting, metric), run.interval(setting, metric)
            values[panel_name(setting, metric)] = (
                None if value is None else (value, *(interval or (value, value)))
            )
            level = run.chance(setting, metric)
            if level is not None:
                chance.setdefault(panel_name(setting, metric), level)
        bars.append(AblationBar(spec.labels[0], values))
    return bars, chance

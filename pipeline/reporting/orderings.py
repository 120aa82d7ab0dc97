"""The scientific check: do the paper's orderings in the cloth-changing (CC) setting hold in the
measured runs? Each is judged from a paired bootstrap of the two runs' difference over the same
queries (holds / reversed / within noise), never from two point values; a missing run says
"not measured"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.confidence import Difference
from pipeline.reporting.comparisons import compare_runs
from pipeline.reporting.measured import MeasuredRun, comparable_groups, latest_run
from pipeline.reporting.paper_results import TABLE3, TABLE4, TABLE5, PaperTable
from pipeline.reporting.tables import MEASURED_ROWS
from pipeline.reporting.variants import FULL, Variant

# Below this size a test set cannot separate the variants (issue 14; `make benchmark` is above).
MIN_CC_QUERIES = 150
MIN_CC_IDENTITIES = 75


@dataclass(frozen=True)
class Ordering:
    table: PaperTable
    better_row: str  # the paper row's method label
    worse_row: str
    strict: bool  # ">" (Table 3) or "≥" (Tables 4 and 5)
    likely_cause: str  # when a measured gap clearly contradicts the paper

    # A row's variant comes from the table's measured-row spec, so the label → variant mapping
    # is stated once (tables.MEASURED_ROWS) and an ordering cannot disagree with its table.
    def _variant(self, row: str) -> Variant:
        specs = MEASURED_ROWS[self.table.number]
        return next(spec.variant for spec in specs if spec.labels[0] == row)

    @property
    def better(self) -> Variant:
        return self._variant(self.better_row)

    @property
    def worse(self) -> Variant:
        return self._variant(self.worse_row)

    @property
    def symbol(self) -> str:
        return ">" if self.strict else "≥"

    def title(self) -> str:
        return f"Table {self.table.number}: {self.better_row} {self.symbol} {self.worse_row}"


ORDERINGS: tuple[Ordering, ...] = (
    Ordering(
        TABLE3,
        "Joint (the proposed ASGL)",
        "Appearance and Gait",
        True,
        "adding the shape branch to appearance + gait did not add information the model could "
        "learn at this budget (few training identities and epochs; a random-init backbone unless "
        "ImageNet weights were given), or body shape differs too little between identities here.",
    ),
    Ordering(
        TABLE3,
        "Appearance and Shape",
        "Texture branch (Appearance)",
        True,
        "the shape branch (GAT on per-frame skeletons) did not add usable information at this "
        "budget, or the estimated skeletons are too noisy on these frames to separate body shapes.",
    ),
    Ordering(
        TABLE4,
        "GAT & ST-GAT",
        "GCN & ST-GCN",
        False,
        "attention weights need more data and epochs to pay off than GCN's fixed neighbourhood "
        "averaging; at a small budget the simpler GCN can match or beat GAT.",
    ),
    Ordering(
        TABLE5,
        "ASGL w/ 3D pose",
        "ASGL w/ 2D pose",
        False,
        "MediaPipe's 3D world landmarks are lifted from one view and can be noisier than its 2D "
        "image landmarks; with simple viewpoints 2D carries the same shape and gait information.",
    ),
)


def _paper_reference(ordering: Ordering) -> str:
    table = ordering.table
    rows = {row.labels[0]: row for row in table.rows}
    dataset = table.datasets[0]
    better = table.value(rows[ordering.better_row], dataset, "cc", "R-1")
    worse = table.value(rows[ordering.worse_row], dataset, "cc", "R-1")
    return f"paper, {dataset} CC R-1: {better:.1f} vs {worse:.1f}"


def _verdict(diffs: dict[str, Difference]) -> str:
    verdicts = {d.verdict for d in diffs.values()}
    if len(verdicts) == 1:
        return f"**{verdicts.pop()}**"
    return "**mixed** (" + ", ".join(f"{m} {d.verdict}" for m, d in diffs.items()) + ")"


def check_ordering(ordering: Ordering, runs: Sequence[MeasuredRun]) -> str:
    """One Markdown bullet judging `ordering` among `runs` (one dataset/profile) from a paired
    bootstrap of the CC difference over the same queries: holds, reversed or within noise."""
    head = f"{ordering.title()} ({_paper_reference(ordering)}): "
    better, worse = latest_run(runs, ordering.better), latest_run(runs, ordering.worse)
    missing = [
        f"{label} (`asgl-pipeline {'train' if v == FULL else 'ablate ' + v.cli_flags()}`)"
        for label, v, run in (
            (ordering.better_row, ordering.better, better),
            (ordering.worse_row, ordering.worse, worse),
        )
        if run is None
    ]
    if missing:
        return head + "**not measured** — no run for " + " and ".join(missing) + "."
    assert better is not None and worse is not None
    diffs, reason = compare_runs(better, worse, "cc")
    if diffs is None:
        return head + f"**not compared** — {reason}."
    measured = ", ".join(
        f"{m} {better.value('cc', m):.1f} vs {worse.value('cc', m):.1f}, "
        f"Δ {d.difference:+.1f} [{d.low:+.1f}, {d.high:+.1f}]"
        for m, d in diffs.items()
    )
    identities = next(iter(diffs.values())).identities
    text = (
        f"{head}{_verdict(diffs)} — {measured} (runs `{better.name}` vs `{worse.name}`; "
        f"{better.queries('cc')} CC queries over {identities} identities; 95 % paired bootstrap)."
    )
    verdicts = {d.verdict for d in diffs.values()}
    if "reversed" in verdicts:
        text += f" Likely cause (not verified): {ordering.likely_cause}"
    elif verdicts == {"within noise"}:
        text += (
            " The interval of the difference includes 0: this test set does not separate the two"
            " models" + (" (consistent with the paper's ≥)." if not ordering.strict else ".")
        )
    return text


def _chance_level(runs: Sequence[MeasuredRun]) -> list[str]:
    """The measured chance level of this test set, and which runs are clear of it in CC (the
    lower end of their 95 % interval above it) or that none is."""
    levels = {
        metric: next((c for r in runs if (c := r.chance("cc", metric)) is not None), None)
        for metric in ("R-1", "mAP")
    }
    if levels["R-1"] is None:
        return []
    measured = {m: level for m, level in levels.items() if level is not None}
    line = (
        "A random ranking scores "
        + " and ".join(f"CC {m} ≈ {level:.1f} %" for m, level in measured.items())
        + " on this test set (measured: the evaluator on random gallery rankings)."
    )
    clear = []
    for run in runs:
        cells = [
            f"{m} {run.value('cc', m):.1f} [{interval[0]:.1f}, {interval[1]:.1f}]"
            for m, level in measured.items()
            if (interval := run.interval("cc", m)) is not None and interval[0] > level
        ]
        if cells:
            clear.append(f"`{run.name}` ({', '.join(cells)})")
    if clear:
        line += (
            " Clear of chance in CC (the whole 95 % interval above it): " + ", ".join(clear) + "."
        )
    elif all(run.interval("cc", "R-1") is not None for run in runs):
        line += (
            " **Every run here has the chance level inside its CC 95 % intervals**: these runs "
            "do not re-identify across clothes beyond noise, so they can neither confirm nor "
            "refute the paper's orderings. Likely causes: a training budget too small to learn "
            "clothes-independent features, or skeletons (the clothes-independent cues) that keep "
            "little identity; a run on ground-truth skeletons (Table 6) tells the two apart."
        )
    return [line, ""]


def _size_warning(runs: Sequence[MeasuredRun]) -> list[str]:
    """A test set too small to compare variants says so, whatever the numbers show."""
    queries = max((r.queries("cc") for r in runs), default=0)
    identities = max(
        (int((r.metrics.get("settings", {}).get("cc") or {}).get("identities") or 0) for r in runs),
        default=0,
    )
    if queries >= MIN_CC_QUERIES and identities >= MIN_CC_IDENTITIES:
        return []
    about = f"{queries} CC queries" + (f" over {identities} identities" if identities else "")
    return [
        f"**This test set is too small to compare variants** ({about}; one query moves CC R-1 "
        f"by {100.0 / max(1, queries):.1f} points). Its verdicts will mostly read 'within "
        f"noise'. `make benchmark` builds a synthetic set sized for it (≥ {MIN_CC_QUERIES} CC "
        f"queries over ≥ {MIN_CC_IDENTITIES} identities) and trains every variant on it.",
        "",
    ]


def ordering_report(runs: Sequence[MeasuredRun]) -> list[str]:
    """Markdown lines: per group of comparable runs (dataset, profile, skeleton source), whether
    each paper ordering holds in CC."""
    groups = comparable_groups(runs)
    if not groups:
        return [f"- {o.title()}: **not measured** — no runs." for o in ORDERINGS]
    lines: list[str] = []
    for group in groups:
        head = f"Measured on **{group.dataset}**, profile **{group.profile}**"
        if group.pose_source == "skeletons":
            head += (
                ", **skeleton files** (a dataset's own 3D joints: no frames, no pose estimation)"
            )
        elif group.pose_source != "mediapipe":
            head += (
                f", **{group.pose_source} skeletons** (the positive control: what the "
                "variants do when the skeletons are exact; the paper uses estimated ones)"
            )
        lines.append(head + ":")
        lines.append("")
        lines += _size_warning(group.runs)
        lines += _chance_level(group.runs)
        lines += [f"- {check_ordering(o, group.runs)}" for o in ORDERINGS]
        lines.append("")
    return lines

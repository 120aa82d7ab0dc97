"""The published rows of the ASGL paper's Tables 1–5, transcribed from the paper text, with the
column layout of each table. `None` is the paper's "-" (not reported there). Numbers are
percentages, as printed."""

from __future__ import annotations

from dataclasses import dataclass

METRICS = ("R-1", "mAP")
SETTING_TITLES = {"cc": "CC", "standard": "Standard", "sc": "SC"}


@dataclass(frozen=True)
class PaperRow:
    labels: tuple[str, ...]  # one per label column
    values: tuple[float | None, ...]  # dataset-major, then setting, then R-1, mAP


@dataclass(frozen=True)
class PaperTable:
    number: int
    caption: str
    label_columns: tuple[str, ...]
    datasets: tuple[str, ...]  # column groups, in the paper's order
    settings: tuple[str, ...]  # keys of SETTING_TITLES, in the paper's order
    rows: tuple[PaperRow, ...]

    def metric_keys(self) -> list[tuple[str, str, str]]:
        """(dataset, setting, metric) of each value column, in the order of `PaperRow.values`."""
        return [(d, s, m) for d in self.datasets for s in self.settings for m in METRICS]

    def value(self, row: PaperRow, dataset: str, setting: str, metric: str) -> float | None:
        return row.values[self.metric_keys().index((dataset, setting, metric))]


TABLE1 = PaperTable(
    number=1,
    caption="Quantitative results on VCCR. ASGL outperforms SOTAs in all evaluation settings by a "
    "significant margin",
    label_columns=("Method", "Method type", "Modalities"),
    datasets=("VCCR",),
    settings=("cc", "standard", "sc"),
    rows=(
        PaperRow(
            ("PCB (Sun et al., 2018)", "Image-based", "RGB"), (18.8, 15.6, 55.6, 36.6, None, None)
        ),
        PaperRow(
            ("AP3D (Gu et al., 2020)", "Video-based", "RGB"), (35.9, 31.6, 78.0, 52.1, None, None)
        ),
        PaperRow(
            ("GRL (Liu et al., 2021)", "Video-based", "RGB"), (35.7, 31.8, 76.9, 51.4, None, None)
        ),
        PaperRow(
            ("SPS (Shu et al., 2021)", "Image-based CC", "RGB"),
            (34.5, 30.5, 76.5, 50.6, None, None),
        ),
        PaperRow(
            ("CAL (Gu et al., 2022)", "Video-based CC", "RGB"), (36.6, 31.9, 78.9, 52.9, 79.1, 63.8)
        ),
        PaperRow(
            ("3STA (Han et al., 2023)", "Video-based CC", "RGB + 3D shape"),
            (40.7, 36.2, 80.5, 54.3, None, None),
        ),
        PaperRow(
            ("ASGL (Ours)", "Video-based CC", "RGB + shape + gait"),
            (52.9, 43.2, 88.1, 65.8, 89.9, 79.5),
        ),
    ),
)

TABLE2 = PaperTable(
    number=2,
    caption="Comparison of quantitative results on CCVID.",
    label_columns=("Method",),
    datasets=("CCVID",),
    settings=("cc", "standard"),
    rows=(
        PaperRow(("InsightFace (Deng et al., 2020)",), (73.5, None, 95.3, None)),
        PaperRow(("ReFace (Arkushin et al., 2022)",), (90.5, None, 89.2, None)),
        PaperRow(("CAL (Gu et al., 2022)",), (81.7, 79.6, 82.6, 81.3)),
        PaperRow(("DCR-ReID (Cui et al., 2023)",), (83.6, 81.4, 84.7, 82.7)),
        PaperRow(("ASGL (Ours)",), (83.9, 82.2, 86.1, 82.5)),
    ),
)

TABLE3 = PaperTable(
    number=3,
    caption="Ablation study of the ASGL branch on VCCR and CCVID.",
    label_columns=("Method",),
    datasets=("VCCR", "CCVID"),
    settings=("cc", "standard"),
    rows=(
        PaperRow(
            ("Texture branch (Appearance)",), (32.8, 29.3, 74.3, 46.7, 78.5, 75.3, 79.7, 76.9)
        ),
        PaperRow(
            ("ASGL branch (Shape and Gait)",), (29.1, 27.4, 68.2, 43.9, 71.3, 70.3, 72.1, 70.8)
        ),
        PaperRow(("Appearance and Shape",), (38.7, 32.3, 77.2, 50.7, 79.6, 75.6, 79.9, 77.2)),
        PaperRow(("Appearance and Gait",), (41.5, 35.5, 79.6, 53.1, 79.2, 76.1, 80.6, 77.9)),
        PaperRow(("Joint (the proposed ASGL)",), (52.9, 43.2, 88.1, 65.8, 83.9, 82.2, 86.1, 82.5)),
    ),
)

TABLE4 = PaperTable(
    number=4,
    caption="Ablation study of the proposed GAT for learning shape and ST-GAT for learning gait "
    "on VCCR.",
    label_columns=("Method",),
    datasets=("VCCR",),
    settings=("cc", "standard"),
    rows=(
        PaperRow(("GCN & ST-GCN",), (45.2, 38.1, 82.6, 58.1)),
        PaperRow(("GAT & ST-GAT",), (52.9, 43.2, 88.1, 65.8)),
    ),
)

TABLE5 = PaperTable(
    number=5,
    caption="Ablation study of 3D pose on VCCR.",
    label_columns=("Method",),
    datasets=("VCCR",),
    settings=("cc", "standard"),
    rows=(
        PaperRow(("ASGL w/ 2D pose",), (47.2, 39.9, 84.1, 60.3)),
        PaperRow(("ASGL w/ 3D pose",), (52.9, 43.2, 88.1, 65.8)),
    ),
)

PAPER_TABLES: tuple[PaperTable, ...] = (TABLE1, TABLE2, TABLE3, TABLE4, TABLE5)
PAPER_DATASETS = ("VCCR", "CCVID")

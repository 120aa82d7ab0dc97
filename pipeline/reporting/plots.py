"""PNG plots: for the report CMC curves, training curves, a CC rank-list grid and a skeleton
overlay strip; for `search` a rank-list strip. Figures are built with `matplotlib.figure.Figure` on
the Agg canvas (no pyplot, no global figure state) and saved without a Software tag, so the same
input gives the same bytes; the search strip is drawn with OpenCV."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from pipeline.errors import StageError
from pipeline.io import atomic_write
from pipeline.reporting.paper_results import SETTING_TITLES
from pipeline.skeleton import EDGES

DPI = 100
STRIP_THUMB_HEIGHT = 160
STRIP_CAPTION_HEIGHT = 36
STYLE = {"svg.hashsalt": "asgl-pipeline", "font.size": 8, "font.family": "DejaVu Sans"}
CORRECT, WRONG, QUERY = "#1a9641", "#d7191c", "#2b83ba"


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: str | Path) -> Path:
    """Write `figure` atomically as a PNG with no varying metadata."""
    return atomic_write(
        path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    )


def cmc_plot(title: str, curves: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """CMC (rank-k accuracy, %) per evaluation setting; `curves` maps setting → [R-1, R-2, …]."""
    with matplotlib.rc_context(STYLE):
        figure = _figure(5, 3.5)
        axes = figure.add_subplot()
        for setting, cmc in curves.items():
            ranks = np.arange(1, len(cmc) + 1)
            axes.plot(
                ranks, cmc, marker="o", markersize=3, label=SETTING_TITLES.get(setting, setting)
            )
        axes.set(xlabel="rank k", ylabel="matching rate (%)", title=title, ylim=(0, 100.5))
        longest = max((len(cmc) for cmc in curves.values()), default=1)
        axes.set_xticks([k for k in (1, 5, 10, 15, 20) if k <= longest])
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right")
        figure.tight_layout()
        return save_png(figure, path)


def training_plot(title: str, log: Sequence[Mapping[str, float]], path: str | Path) -> Path:
    """Loss terms and training accuracy per epoch, from train_log.csv rows."""
    with matplotlib.rc_context(STYLE):
        figure = _figure(8, 3.2)
        loss_axes, acc_axes = figure.subplots(1, 2)
        epochs = [row.get("epoch", i + 1) for i, row in enumerate(log)]
        for key in ("loss", "ce", "triplet"):
            if any(key in row for row in log):
                loss_axes.plot(epochs, [row.get(key, np.nan) for row in log], marker=".", label=key)
        loss_axes.set(xlabel="epoch", ylabel="loss", title=f"{title}: losses")
        loss_axes.legend()
        acc_axes.plot(epochs, [row.get("acc", np.nan) for row in log], marker=".", color="C3")
        acc_axes.set(xlabel="epoch", ylabel="training accuracy", title=f"{title}: accuracy")
        for axes in (loss_axes, acc_axes):
            axes.grid(alpha=0.3)
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        figure.tight_layout()
        return save_png(figure, path)


@dataclass(frozen=True)
class RankedQuery:
    """One CC query and its top-k gallery tracklets after CC removal."""

    query_key: str
    query_pid: str
    gallery_keys: tuple[str, ...]
    gallery_pids: tuple[str, ...]
    correct: tuple[bool, ...]


def _thumbnail_cell(axes, image: np.ndarray | None, caption: str, colour: str) -> None:
    if image is None:
        axes.set_facecolor("#dddddd")
        axes.text(0.5, 0.5, "no frame", ha="center", va="center", transform=axes.transAxes)
    else:
        axes.imshow(image, interpolation="nearest", aspect="auto")
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3)
    axes.set_title(caption, fontsize=6, color=colour)


def rank_grid(
    title: str,
    queries: Sequence[RankedQuery],
    thumbnail: Callable[[str], np.ndarray | None],
    path: str | Path,
) -> Path:
    """Rows = queries; column 0 the query, then its top-k gallery (green = same person, red = not).
    `thumbnail(key)` returns an RGB uint8 image of the tracklet or None."""
    top_k = max(len(q.gallery_keys) for q in queries)
    with matplotlib.rc_context(STYLE):
        figure = _figure(max(6.0, 1.0 * (top_k + 1) + 0.3), 1.9 * len(queries) + 0.7)
        grid = figure.subplots(len(queries), top_k + 1, squeeze=False)
        for row, query in enumerate(queries):
            _thumbnail_cell(
                grid[row, 0], thumbnail(query.query_key), f"query {query.query_pid}", QUERY
            )
            for col in range(top_k):
                axes = grid[row, col + 1]
                if col >= len(query.gallery_keys):
                    axes.axis("off")
                    continue
                ok = query.correct[col]
                caption = f"#{col + 1} {query.gallery_pids[col]} {'✓' if ok else '✗'}"
                colour = CORRECT if ok else WRONG
                _thumbnail_cell(axes, thumbnail(query.gallery_keys[col]), caption, colour)
        figure.suptitle(title)
        figure.tight_layout()
        return save_png(figure, path)


@dataclass(frozen=True)
class StripTile:
    """One tracklet of a rank-list strip: a frame (BGR uint8, or None), caption lines, BGR colour."""

    frame: np.ndarray | None
    lines: tuple[str, ...]
    colour: tuple[int, int, int]


def _strip_tile(tile: StripTile) -> np.ndarray:
    if tile.frame is None:
        body = np.full((STRIP_THUMB_HEIGHT, STRIP_THUMB_HEIGHT // 2, 3), 200, np.uint8)
        cv2.putText(
            body,
            "no frame",
            (4, STRIP_THUMB_HEIGHT // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            (60, 60, 60),
            1,
        )
    else:
        width = max(1, round(tile.frame.shape[1] * STRIP_THUMB_HEIGHT / tile.frame.shape[0]))
        body = cv2.resize(tile.frame, (width, STRIP_THUMB_HEIGHT), interpolation=cv2.INTER_AREA)
    width = max(body.shape[1], 96)
    image = np.full((STRIP_CAPTION_HEIGHT + STRIP_THUMB_HEIGHT, width, 3), 255, np.uint8)
    image[STRIP_CAPTION_HEIGHT:, : body.shape[1]] = body
    for row, text in enumerate(tile.lines):
        cv2.putText(
            image,
            text,
            (3, 14 + 16 * row),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            tile.colour,
            1,
            cv2.LINE_AA,
        )
    cv2.rectangle(image, (0, 0), (width - 1, image.shape[0] - 1), tile.colour, 2)
    return image


def rank_strip(tiles: Sequence[StripTile], path: str | Path) -> Path:
    """The tiles left to right (a query, then its ranked matches) as one PNG, written atomically."""
    images = [_strip_tile(tile) for tile in tiles]
    gap = np.full((images[0].shape[0], 6, 3), 255, np.uint8)
    strip = np.concatenate([part for image in images for part in (image, gap)][:-1], axis=1)
    ok, encoded = cv2.imencode(".png", strip)
    if not ok:
        raise StageError(f"could not encode the rank-list image for {path}")
    return atomic_write(path, lambda tmp: tmp.write_bytes(encoded.tobytes()))


@dataclass(frozen=True)
class SkeletonPanel:
    """A frame (RGB uint8) with its 14 joints in pixel coordinates."""

    image: np.ndarray
    joints_xy: np.ndarray  # (14, 2) pixels
    caption: str


def skeleton_strip(title: str, panels: Sequence[SkeletonPanel], path: str | Path) -> Path:
    """Frames side by side with the 14 joints and the bones drawn, for checking pose quality."""
    with matplotlib.rc_context(STYLE):
        figure = _figure(max(4.5, 1.4 * len(panels) + 0.3), 3.2)
        grid = figure.subplots(1, len(panels), squeeze=False)[0]
        for axes, panel in zip(grid, panels, strict=True):
            axes.imshow(panel.image, interpolation="nearest")
            height, width = panel.image.shape[:2]
            for a, b in EDGES:
                xs, ys = panel.joints_xy[[a, b], 0], panel.joints_xy[[a, b], 1]
                axes.plot(xs, ys, color="#ffdd00", linewidth=1.5)
            axes.scatter(
                panel.joints_xy[:, 0], panel.joints_xy[:, 1], s=9, color="#ff2020", zorder=3
            )
            axes.add_patch(Rectangle((0, 0), width - 1, height - 1, fill=False, linewidth=0.5))
            axes.set(xlim=(0, width - 1), ylim=(height - 1, 0), xticks=[], yticks=[])
            axes.set_title(panel.caption, fontsize=6)
        figure.suptitle(title)
        figure.tight_layout()
        return save_png(figure, path)


@dataclass(frozen=True)
class AblationBar:
    """One measured variant of an ablation table: per panel (e.g. "CC R-1") its value and 95 %
    interval (None when not measured)."""

    label: str
    values: Mapping[str, tuple[float, float, float] | None]  # panel → (value, low, high)


def ablation_plot(
    title: str,
    bars: Sequence[AblationBar],
    chance: Mapping[str, float],
    panels: Sequence[str],
    path: str | Path,
) -> Path:
    """One panel per metric (CC / Standard R-1 and mAP): a bar per variant with its 95 % interval
    as an error bar, and the test set's measured chance level as a dashed line."""
    with matplotlib.rc_context(STYLE):
        figure = _figure(2.2 * len(panels) + 1.0, 3.6)
        axes_row = figure.subplots(1, len(panels), squeeze=False)[0]
        colours = matplotlib.colormaps["tab10"].colors
        handles = [
            Rectangle((0, 0), 1, 1, color=colours[i % len(colours)]) for i in range(len(bars))
        ]
        for axes, panel in zip(axes_row, panels, strict=True):
            for i, bar in enumerate(bars):
                measured = bar.values.get(panel)
                if measured is None:
                    axes.text(i, 1, "not\nmeasured", ha="center", va="bottom", fontsize=6)
                    continue
                value, low, high = measured
                axes.bar(i, value, color=colours[i % len(colours)], width=0.7)
                axes.errorbar(
                    i,
                    value,
                    yerr=[[value - low], [high - value]],
                    color="black",
                    capsize=3,
                    linewidth=1,
                )
            if panel in chance:
                axes.axhline(
                    chance[panel],
                    color="grey",
                    linestyle="--",
                    linewidth=1,
                    label=f"chance {chance[panel]:.1f}",
                )
                axes.legend(loc="upper right", fontsize=6)
            axes.set_xticks([])  # the variants are named once, in the legend below
            axes.set(title=panel, ylim=(0, 100), ylabel="%" if panel == panels[0] else None)
            axes.grid(axis="y", alpha=0.3)
        figure.suptitle(title)
        figure.legend(
            handles,
            [b.label for b in bars],
            loc="lower center",
            ncol=min(len(bars), 3),
            frameon=False,
        )
        figure.tight_layout(rect=(0, 0.16, 1, 1))
        return save_png(figure, path)

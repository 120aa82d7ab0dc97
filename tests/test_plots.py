"""The report's plots draw their data: pixels of each curve's colour sit where the numbers put
them (the images are decoded and read, not only checked for a PNG header)."""

from __future__ import annotations

import numpy as np
from matplotlib.image import imread

from pipeline.reporting.plots import (
    CORRECT,
    WRONG,
    RankedQuery,
    SkeletonPanel,
    StripTile,
    cmc_plot,
    rank_grid,
    rank_strip,
    skeleton_strip,
    training_plot,
)

C0, C3 = "#1f77b4", "#d62728"  # matplotlib's first and fourth default line colours


def pixels_of(path, colour: str, tolerance: float = 0.06) -> np.ndarray:
    """(N, 2) (row, column) of the pixels of `colour` in the PNG at `path`."""
    image = imread(path)[..., :3]
    rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return np.argwhere(np.abs(image - rgb).max(axis=-1) < tolerance)


def test_cmc_curve_sits_high_for_high_accuracy_and_low_for_low(tmp_path):
    high = pixels_of(cmc_plot("t", {"cc": [95.0] * 20}, tmp_path / "high.png"), C0)
    low = pixels_of(cmc_plot("t", {"cc": [5.0] * 20}, tmp_path / "low.png"), C0)
    assert len(high) > 100 and len(low) > 100
    assert high[:, 0].mean() < low[:, 0].mean() - 150  # rows grow downwards; 350 px tall figure
    assert imread(tmp_path / "high.png").shape[:2] == (350, 500)  # 5 × 3.5 in at 100 dpi


def test_cmc_curve_rises_with_rank(tmp_path):
    path = cmc_plot("t", {"standard": np.linspace(10, 90, 20).tolist()}, tmp_path / "c.png")
    curve = pixels_of(path, C0)
    left = curve[curve[:, 1] < np.median(curve[:, 1])]
    right = curve[curve[:, 1] >= np.median(curve[:, 1])]
    assert left[:, 0].mean() > right[:, 0].mean() + 50


def test_training_plot_draws_falling_loss_and_rising_accuracy(tmp_path):
    log = [{"epoch": e, "loss": 5.0 - e, "acc": 0.2 * e} for e in range(1, 5)]
    path = training_plot("t", log, tmp_path / "t.png")
    loss, accuracy = pixels_of(path, C0), pixels_of(path, C3)
    assert len(loss) > 50 and len(accuracy) > 50
    assert accuracy[:, 1].min() > loss[:, 1].max()  # accuracy in the right-hand panel

    def slope(points):  # mean row of the right half minus the left half (rows grow downwards)
        middle = np.median(points[:, 1])
        return points[points[:, 1] >= middle, 0].mean() - points[points[:, 1] < middle, 0].mean()

    assert slope(loss) > 30 and slope(accuracy) < -30


def test_rank_grid_frames_correct_matches_green_and_wrong_ones_red(tmp_path):
    def grid(correct, name):
        query = RankedQuery("q", "1", ("a", "b"), ("1", "2"), correct)
        thumbnail = lambda _key: np.full((32, 16, 3), 128, np.uint8)  # noqa: E731
        return rank_grid("t", [query], thumbnail, tmp_path / name)

    mixed = grid((True, False), "mixed.png")
    assert len(pixels_of(mixed, CORRECT)) > 50 and len(pixels_of(mixed, WRONG)) > 50
    right = grid((True, True), "right.png")
    assert len(pixels_of(right, WRONG)) == 0 and len(pixels_of(right, CORRECT)) > 50


def test_rank_strip_puts_each_tile_left_to_right_in_its_colour(tmp_path):
    """Search's strip: tiles 160 px tall (a 80×40 frame becomes 160×80, a missing one a grey
    placeholder), each framed in its colour, 6 px gaps, in the order given."""
    import cv2

    frame = np.zeros((80, 40, 3), np.uint8)
    tiles = [
        StripTile(frame, ("query",), (255, 0, 0)),
        StripTile(None, ("#1",), (0, 0, 255)),
        StripTile(frame, ("#2",), (0, 255, 0)),
    ]
    image = cv2.imread(str(rank_strip(tiles, tmp_path / "s.png")))
    assert image.shape == (36 + 160, 96 + 6 + 96 + 6 + 96, 3)  # tiles are at least 96 px wide
    for index, colour in enumerate([(255, 0, 0), (0, 0, 255), (0, 255, 0)]):
        left = index * (96 + 6)
        assert tuple(image[100, left]) == colour and tuple(image[100, left + 95]) == colour
    assert image[100, 96 + 6 + 40].tolist() == [200, 200, 200]  # the placeholder's grey
    assert image[100, 40].tolist() == [0, 0, 0]  # the query's (black) frame
    assert image[100, 97].tolist() == [255, 255, 255]  # the gap


def test_skeleton_strip_draws_the_joints_where_they_are(tmp_path):
    def strip(x, name):
        joints = np.stack([np.full(14, x), np.linspace(10, 110, 14)], axis=1)
        panel = SkeletonPanel(np.zeros((128, 64, 3), np.uint8), joints, "p")
        return pixels_of(skeleton_strip("t", [panel], tmp_path / name), "#ff2020")

    left, right = strip(8.0, "left.png"), strip(56.0, "right.png")
    assert len(left) > 20 and len(right) > 20
    assert right[:, 1].mean() > left[:, 1].mean() + 40

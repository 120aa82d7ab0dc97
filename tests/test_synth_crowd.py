"""Crowd scenes for detection/tracking tests: walkers in opposite directions on separate lanes,
ground-truth boxes read off the rendered pixels, one cast shared by two scenes, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.synth.crowd import plan_crowd, render_crowd


def test_neighbours_walk_in_opposite_directions_on_separate_lanes():
    scene = plan_crowd(seed=3, people=3, frames=24)
    assert [w.heading for w in scene.walkers] == [1, -1, 1]
    lanes = [w.lane for w in scene.walkers]
    assert np.all(np.diff(lanes) > 1.0)


def test_a_cast_is_the_same_people_in_another_scene():
    first, second = plan_crowd(seed=1, cast=7), plan_crowd(seed=2, cast=7)
    assert [w.identity for w in first.walkers] == [w.identity for w in second.walkers]
    assert [w.outfit for w in first.walkers] == [w.outfit for w in second.walkers]
    assert first.backdrop != second.backdrop
    assert plan_crowd(seed=1).walkers[0].identity != first.walkers[0].identity


def test_boxes_and_visibility_come_from_the_pixels():
    scene = plan_crowd(seed=0, people=2, frames=3, size=(192, 108))
    frames, truth = render_crowd(scene)
    again, truth_again = render_crowd(scene)
    assert all(np.array_equal(a, b) for a, b in zip(frames, again))
    assert np.array_equal(truth.boxes, truth_again.boxes, equal_nan=True)
    assert frames[0].shape == (108, 192, 3) and truth.boxes.shape == (3, 2, 4)
    boxes = truth.boxes[np.isfinite(truth.boxes).all(-1)]
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 192).all() and (boxes[:, 3] <= 108).all()
    # The nearer walker (lane 0) looks taller, and nobody hides them.
    heights = truth.boxes[..., 3] - truth.boxes[..., 1]
    assert np.nanmean(heights[:, 0]) > np.nanmean(heights[:, 1])
    assert truth.visible[:, 0] == pytest.approx(1.0)


def test_bad_people_count():
    with pytest.raises(ValueError, match="1 to 4 people"):
        plan_crowd(seed=0, people=6)

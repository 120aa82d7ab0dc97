"""The no-learning probe: cues computed by hand, and the stage on a tiny ground-truth cache."""

import json

import numpy as np
import pytest

from pipeline import probe, skeleton
from stages import preprocess
from stages import probe as probe_stage


def test_cadence_finds_the_rhythm_of_the_feet():
    t = np.arange(40)
    joints = np.zeros((40, 14, 3))
    joints[:, probe.L_FOOT, 2] = 0.3 * np.sin(2 * np.pi * t / 12.5)
    # the feet's distance |2·0.3·sin| repeats every half stride
    assert probe.cadence(joints) == pytest.approx(2 / 12.5, rel=0.05)
    assert probe.cadence(np.zeros((40, 14, 3))) == 0.0


def _walking_swings(frames: int, period: float, rng, noise: float) -> np.ndarray:
    """Feet, knees and hands swinging left against right once a stride, plus per-frame noise."""
    t = np.arange(frames)
    joints = rng.normal(0, noise, size=(frames, 14, 3))
    swing = np.sin(2 * np.pi * t / period + 0.7)
    for (left, right), amplitude in zip(probe.SWING_PAIRS, (0.3, 0.15, 0.2)):
        joints[:, left, 2] += amplitude * swing
        joints[:, right, 2] -= amplitude * swing
    return joints


def test_cadence_holds_under_frame_noise_and_occasional_left_right_swaps():
    rng = np.random.default_rng(0)
    period = 16.7  # frames a stride: two steps
    noisy = _walking_swings(32, period, rng, noise=0.15)
    assert probe.cadence(noisy) == pytest.approx(2 / period, rel=0.05)
    swapped = _walking_swings(32, period, rng, noise=0.05)
    for frame in rng.choice(32, size=4, replace=False):  # an eighth of the frames, as MediaPipe
        for left, right in probe.SWING_PAIRS:
            swapped[frame, [left, right]] = swapped[frame, [right, left]]
    assert probe.cadence(swapped) == pytest.approx(2 / period, rel=0.05)


def test_bone_ratios_are_scale_free_and_eq1_is_undone():
    rng = np.random.default_rng(0)
    joints = rng.normal(0, 0.3, size=(10, 14, 3))
    small, large = probe.tracklet_cues(joints), probe.tracklet_cues(2.5 * joints)
    np.testing.assert_allclose(small["bone ratios"], large["bone ratios"])
    np.testing.assert_allclose(small["limb proportions"], large["limb proportions"])
    paper = skeleton.normalise(joints, (256, 128), "paper")
    np.testing.assert_allclose(
        probe.metric_joints(paper, (256, 128), "paper"),
        joints - skeleton.hip_centre(joints),
        atol=1e-6,
    )


def test_probe_on_a_tiny_ground_truth_cache(synthetic_root, preprocess_config, tmp_path):
    cache = tmp_path / "gt.h5"
    preprocess.run(preprocess_config(synthetic_root, cache, pose_source="groundtruth"))
    config = preprocess_config(synthetic_root, cache)
    config.paths.reports_dir = str(tmp_path / "reports")
    record = probe_stage.run(config, log=lambda _m: None)
    written = json.loads((tmp_path / "reports" / "probe_gt.json").read_text())
    assert written["cues"] == json.loads(json.dumps(record["cues"]))
    assert written["pose_source"] == "groundtruth"
    assert set(record["cues"]) == {*probe.CUES, *probe.VARIANT_CUES}
    # perfect skeletons: the body's proportions identify everyone, in every setting
    for setting in ("standard", "cc", "sc"):
        assert record["cues"]["bone ratios"][setting]["R-1"] == 100.0
        assert record["chance"][setting]["R-1"] < 100.0
    # the same cues with the identities shuffled fall to chance: the probe can tell
    rng = np.random.default_rng(0)
    with probe_stage.SkeletonCache(cache) as opened:
        q, g = probe_stage._read(opened, "query"), probe_stage._read(opened, "gallery")
    shuffled = [g[0][i] for i in rng.permutation(len(g[0]))]
    result = probe.score_cues(q[0], shuffled, q[1], g[1], chance_repeats=10)
    assert result.cues["bone ratios"]["cc"]["R-1"] < 100.0

"""Where pose estimation loses identity: the error split, ICC, the checks of our own path and the
noise-model controls on constructed cases whose answer is known, and the stage on tiny caches."""

import json

import numpy as np
import pytest

from pipeline import pose_error as pe
from pipeline.cache import SkeletonCache
from pipeline.probe import bone_lengths
from stages import pose_error as pose_error_stage
from stages import preprocess


def walker(frames: int = 40, phase: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """A (T, 14, 3) hip-centred stick figure facing the camera whose legs swing in time."""
    base = (
        np.array(
            [
                [0, -0.7, 0],
                [0, -0.5, 0],
                [0.2, -0.5, 0],
                [-0.2, -0.5, 0],
                [0.25, -0.2, 0],
                [-0.25, -0.2, 0],
                [0.25, 0.05, 0],
                [-0.25, 0.05, 0],
                [0.1, 0, 0],
                [-0.1, 0, 0],
                [0.1, 0.45, 0],
                [-0.1, 0.45, 0],
                [0.1, 0.9, 0],
                [-0.1, 0.9, 0],
            ],
            dtype=np.float64,
        )
        * scale
    )
    joints = np.repeat(base[None], frames, axis=0)
    swing = 0.15 * np.sin(2 * np.pi * np.arange(frames) / 12 + phase)
    joints[:, 10, 2] += 0.2 + swing  # bent knees swinging in antiphase (one period: 12 frames) …
    joints[:, 11, 2] += 0.2 - swing
    joints[:, 12, 2] += 0.2 * swing  # … so the knee angle changes over the stride
    joints[:, 13, 2] -= 0.2 * swing
    return joints


def pair(estimate, truth, pid="001", key="k", clothes="c", camera=1) -> pe.Pair:
    return pe.Pair(key, pid, clothes, camera, estimate, truth, np.ones(len(truth), dtype=bool))


def test_the_three_parts_sum_to_the_error_and_split_as_named():
    rng = np.random.default_rng(0)
    truth = walker()
    offset = np.array([0.05, -0.02, 0.1])
    slow = 0.03 * np.linspace(-1, 1, len(truth))[:, None, None]
    fast = 0.01 * rng.choice([-1.0, 1.0], size=truth.shape)
    parts = pe.split_error(pair(truth + offset + slow + fast, truth))
    np.testing.assert_allclose(
        parts.bias[None] + parts.drift + parts.jitter, offset + slow + fast, atol=1e-12
    )
    np.testing.assert_allclose(parts.bias, offset + fast.mean(0), atol=1e-12)
    # the slow ramp is drift (away from the edges, where the average sees padded frames), the
    # sign-flipping noise is jitter
    inner = slice(5, -5)
    assert np.abs(parts.drift[inner] - slow[inner]).max() < 0.01
    assert np.sqrt((parts.jitter[inner] ** 2).mean()) == pytest.approx(0.01, rel=0.25)
    # a constant offset alone is all bias
    only = pe.split_error(pair(truth + offset, truth))
    np.testing.assert_allclose(only.drift, 0, atol=1e-12)
    np.testing.assert_allclose(only.jitter, 0, atol=1e-12)


def test_icc_by_hand():
    # two groups of 3, means 2 and 5: between-group mean square 3·(1.5² + 1.5²) = 13.5, within
    # (1 + 0 + 1) · 2 / 4 = 1 → (13.5 − 1) / (13.5 + 2 · 1)
    values, groups = [1, 2, 3, 4, 5, 6], ["a", "a", "a", "b", "b", "b"]
    assert pe.icc(values, groups) == pytest.approx(12.5 / 15.5)
    assert pe.icc([1, 1, 2, 2], ["a", "a", "b", "b"]) == pytest.approx(1.0)
    # values that do not depend on the group: between smaller than within, ICC ≤ 0
    assert pe.icc([1, 2, 1, 2], ["a", "a", "b", "b"]) < 0
    with pytest.raises(ValueError):
        pe.icc([1, 2], ["a", "b"])


def test_explained_share_by_hand_and_against_random_groups():
    # group means 2 and 5 of 1..6: R² = 13.5 / 17.5; two groups of six values: chance 1/5
    row = pe.explained_share(np.arange(1.0, 7.0), ["a", "a", "a", "b", "b", "b"])
    assert row["share"] == pytest.approx(13.5 / 17.5)
    assert row["chance"] == pytest.approx(0.2)
    assert row["beyond chance"] == pytest.approx((13.5 / 17.5 - 0.2) / 0.8)
    # groups that mean nothing explain about what random groups do
    rng = np.random.default_rng(0)
    noise = pe.explained_share(rng.normal(size=(4000, 3)), rng.integers(0, 50, 4000))
    assert abs(noise["beyond chance"]) < 0.02
    with pytest.raises(ValueError, match="two groups"):
        pe.explained_share([1.0, 2.0], ["a", "b"])


def test_bias_sources_name_what_the_bias_follows():
    # each tracklet's estimate is its truth plus an offset fixed by its camera alone: the camera
    # explains all of the bias, the person (spread over the cameras) none beyond chance
    rng = np.random.default_rng(1)
    offsets = {camera: rng.normal(0, 0.05, (14, 3)) for camera in range(4)}
    pairs = []
    for person in range(12):
        for camera in range(4):
            truth = walker(phase=person)
            pairs.append(pair(truth + offsets[camera], truth, f"{person:03d}", camera=camera))
    sources = pe.bias_sources(pairs)
    assert sources["camera"]["share"] == pytest.approx(1.0)
    assert sources["identity"]["beyond chance"] < 0.05
    assert sources["outfit (identity, clothes)"]["beyond chance"] < 0.05
    # every walker faces the camera: one view, one facing bin, nothing to compare, left out
    assert set(sources) == {"camera", "identity", "outfit (identity, clothes)"}


def test_agreement_reads_shrinkage_as_the_slope():
    truth = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    groups = ["a", "a", "b", "b", "c", "c"]
    shrunk = pe.agreement(3.5 + 0.1 * (truth - 3.5), truth, groups)
    assert shrunk["slope"] == pytest.approx(0.1) and shrunk["corr"] == pytest.approx(1.0)
    assert shrunk["icc_estimate"] == pytest.approx(shrunk["icc_truth"])  # scale-free


def test_checks_find_a_time_shift_and_a_left_right_swap():
    truth = walker(60)
    shifted = np.roll(truth, 2, axis=0)  # the estimate two frames late
    checks = pe.alignment_checks([pair(shifted, truth)])
    assert max(checks["knee lag histogram"], key=checks["knee lag histogram"].get) == "2"
    mirrored = truth.copy()
    for left, right in pe.LEFT_RIGHT_PAIRS:
        mirrored[:, [left, right]] = mirrored[:, [right, left]]
    swapped = pe.alignment_checks([pair(mirrored, truth)])["left/right swapped frames %"]
    assert swapped["frontal"] == {"tracklets": 1, "percent": 100.0}
    clean = pe.alignment_checks([pair(truth + 0.001, truth)])["left/right swapped frames %"]
    assert clean["frontal"]["percent"] == 0.0
    assert pe.view_name(truth) == "frontal"
    assert pe.view_name(-truth * np.array([1, -1, 1])) == "back"  # turned about the vertical


def test_checks_count_a_limb_swapped_alone():
    truth = walker(40)
    legs_swapped = truth.copy()
    for left, right in pe.LIMBS["legs"]:
        legs_swapped[:10, [left, right]] = legs_swapped[:10, [right, left]]  # a quarter of frames
    checks = pe.alignment_checks([pair(legs_swapped, truth)])
    assert checks["limb swapped frames %"]["legs"]["frontal"]["percent"] == 25.0
    assert checks["limb swapped frames %"]["arms"]["frontal"]["percent"] == 0.0
    # the whole body mirrored is worse than the estimate: the torso and arms are right
    assert checks["left/right swapped frames %"]["frontal"]["percent"] == 0.0


def test_bone_lengths_are_rebuilt_as_asked():
    truth = walker()
    same = pe.with_bone_lengths(truth, np.ones(len(pe.EDGES)))
    np.testing.assert_allclose(same, truth, atol=1e-12)
    factors = np.ones(len(pe.EDGES))
    shin = pe._edge_index(10, 12)
    factors[shin] = 2.0
    longer = pe.with_bone_lengths(truth, factors)
    before, after = bone_lengths(truth), bone_lengths(longer)
    np.testing.assert_allclose(after[:, shin], 2 * before[:, shin])
    others = [b for b in range(len(pe.EDGES)) if b != shin]
    np.testing.assert_allclose(after[:, others], before[:, others], atol=1e-12)
    # a neck bone is set too: the neck moves to meet both shoulder bones' lengths
    neck = pe._edge_index(1, 3)
    factors = np.ones(len(pe.EDGES))
    factors[neck] = 1.2
    after = bone_lengths(pe.with_bone_lengths(truth, factors))
    np.testing.assert_allclose(after[:, neck], 1.2 * before[:, neck], rtol=1e-9)
    others = [b for b in range(len(pe.EDGES)) if b != neck]
    np.testing.assert_allclose(after[:, others], before[:, others], rtol=1e-9)


def test_controls_add_back_one_component_alone():
    rng = np.random.default_rng(1)
    pairs = []
    for i in range(6):
        truth = walker(40, phase=i, scale=0.9 + 0.04 * i)
        estimate = truth + 0.05 * rng.normal(size=3) + 0.01 * rng.normal(size=truth.shape)
        pairs.append(pair(estimate, truth, pid=f"{i // 2}", key=f"k{i}"))
    model = pe.noise_model(pairs)
    p = pairs[0]
    np.testing.assert_allclose(pe.control_joints(p, "all", model, rng), p.estimate)
    bias = pe.control_joints(p, "bias", model, rng) - p.truth
    rest = pe.control_joints(p, "drift+jitter", model, rng) - p.truth
    np.testing.assert_allclose(bias + rest, p.estimate - p.truth)
    assert np.ptp(bias, axis=0).max() < 1e-12  # the same offset on every frame
    noise = np.concatenate([pe.control_joints(q, "iid", model, rng) - q.truth for q in pairs])
    np.testing.assert_allclose(np.sqrt((noise**2).mean(0)), model.rms, rtol=0.35)
    # shrinkage with slope 0: every tracklet gets the population's mean bones, all of them — the
    # neck's two shoulder bones too, which close the torso's cycle (no bone left to carry the
    # person's own length)
    for q in pairs:
        lengths = np.median(bone_lengths(pe.control_joints(q, "template", model, rng)), axis=0)
        np.testing.assert_allclose(lengths, model.bone_mean, rtol=1e-6)
    # a random offset: the same on every frame, its size K × the bias's RMS over many draws
    biases = np.stack([pe.split_error(q).bias for q in pairs])
    np.testing.assert_allclose(model.bias_rms, np.sqrt((biases**2).sum(-1).mean(0)))
    draws = np.stack(
        [pe.control_joints(p, "offset-0.5", model, rng) - p.truth for _ in range(3000)]
    )
    assert np.ptp(draws, axis=1).max() < 1e-12
    np.testing.assert_allclose(
        np.sqrt((draws[:, 0] ** 2).sum(-1).mean(0)), 0.5 * model.bias_rms, rtol=0.08
    )
    # the motion channel: no tracklet keeps a constant of its own — every one has the same mean,
    # the motion (frame minus mean) is the truth's, or the truth's with the component added
    for q in pairs:
        motion = pe.control_joints(q, "motion", model, rng)
        np.testing.assert_allclose(motion.mean(0), model.mean_pose, atol=1e-12)
        np.testing.assert_allclose(motion - motion.mean(0), q.truth - q.truth.mean(0), atol=1e-12)
        noisy = pe.control_joints(q, "motion+all", model, rng)
        np.testing.assert_allclose(
            noisy - noisy.mean(0), q.estimate - q.estimate.mean(0), atol=1e-12
        )
        np.testing.assert_allclose(noisy.mean(0), model.mean_pose, atol=1e-12)
    with pytest.raises(ValueError, match="unknown control"):
        pe.control_joints(p, "blur", model, rng)


def test_the_bias_splits_into_its_facing_part_and_the_rest():
    # walkers facing two ways (the second turned 180° about the vertical), each tracklet's bias
    # a fixed offset of its facing plus its own: `facing` adds the facing's mean bias back,
    # `bias-facing` the rest, and the two sum to the bias
    rng = np.random.default_rng(2)
    turn = np.diag([-1.0, 1.0, -1.0])
    offsets = {0: np.array([0.1, 0.0, 0.0]), 1: np.array([0.0, 0.0, -0.1])}
    pairs, owns = [], []
    for i in range(8):
        side = i % 2
        truth = walker(phase=i, scale=0.9 + 0.03 * i) @ (turn if side else np.eye(3)).T
        own = 0.02 * rng.normal(size=(14, 3))
        owns.append(own)
        pairs.append(pair(truth + offsets[side] + own, truth, f"{i}", key=f"k{i}"))
    model = pe.noise_model(pairs)
    assert len(model.facing_bias) == 2
    for q in pairs:
        facing = pe.control_joints(q, "facing", model, rng) - q.truth
        rest = pe.control_joints(q, "bias-facing", model, rng) - q.truth
        np.testing.assert_allclose(
            facing + rest, pe.control_joints(q, "bias", model, rng) - q.truth
        )
        side = int(q.key[1:]) % 2
        expected = offsets[side] + np.mean(owns[side::2], axis=0)
        np.testing.assert_allclose(facing[0], expected, atol=1e-9)
        assert np.ptp(facing, axis=0).max() < 1e-12


def test_stage_on_tiny_caches_and_a_control_cache(synthetic_root, preprocess_config, tmp_path):
    truth, estimate = tmp_path / "gt.h5", tmp_path / "est.h5"
    preprocess.run(preprocess_config(synthetic_root, truth, pose_source="groundtruth"))
    preprocess.run(preprocess_config(synthetic_root, estimate))
    config = preprocess_config(synthetic_root, estimate)
    config.paths.reports_dir = str(tmp_path / "reports")
    config.pose_error.truth = str(truth)
    config.pose_error.control = "bias"
    config.pose_error.out = str(tmp_path / "gt+bias.h5")
    record = pose_error_stage.run(config, log=lambda _m: None)
    written = json.loads((tmp_path / "reports" / "pose_error_est.json").read_text())
    assert written["tracklets"] == record["tracklets"] > 0
    assert set(written["error"]["all joints"]) == {
        "total",
        "bias",
        "drift",
        "jitter",
        "vertical offset",
    }
    assert written["body"]["leg/torso"]["icc_truth"] > 0.9  # rendered bodies differ by identity
    with SkeletonCache(tmp_path / "gt+bias.h5") as control, SkeletonCache(truth) as gt:
        assert control.attrs["pose_source"] == "groundtruth+bias"
        assert control.keys() == gt.keys()[: len(control.keys())]
        key = control.keys()[0]
        assert control.meta(key)["pid"] == gt.meta(key)["pid"]
        moved = (
            control.read(key, ("joints14",))["joints14"] - gt.read(key, ("joints14",))["joints14"]
        )
        assert np.abs(moved).max() > 0 and np.ptp(moved, axis=0).max() < 1e-6  # one offset


def test_stage_messages(synthetic_root, preprocess_config, tmp_path):
    config = preprocess_config(synthetic_root, tmp_path / "est.h5")
    with pytest.raises(pose_error_stage.StageError, match="--truth"):
        pose_error_stage.run(config, log=lambda _m: None)
    config.pose_error.truth = "gt.h5"
    config.pose_error.control = "blur"
    with pytest.raises(pose_error_stage.StageError, match="unknown control"):
        pose_error_stage.run(config, log=lambda _m: None)

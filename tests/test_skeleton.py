import numpy as np
import pytest

from pipeline import skeleton


def test_mapping_needs_33_landmarks():
    with pytest.raises(
        ValueError, match=r"^expected 33 landmarks on axis -2, got shape \(1, 14, 3\)$"
    ):
        skeleton.map_33_to_14(np.zeros((1, 14, 3)))


def test_mapping_by_hand():
    landmarks = np.zeros((1, 33, 3), dtype=np.float32)
    landmarks[0, :, 0] = np.arange(33)  # x = landmark index, so each joint's x is a mean of indices
    joints = skeleton.map_33_to_14(landmarks)
    expected_x = [5.0, 11.5, 11, 12, 13, 14, 18.0, 19.0, 23, 24, 25, 26, 29.0, 30.0]
    assert joints.shape == (1, 14, 3)
    np.testing.assert_allclose(joints[0, :, 0], expected_x)


def test_normalisation_paper_eq1():
    joints = np.zeros((1, 14, 3), dtype=np.float32)
    joints[0, 8] = [1.0, 2.0, 3.0]
    joints[0, 9] = [3.0, 2.0, 1.0]  # hip centre (2, 2, 2)
    joints[0, 0] = [2.0 + 256, 2.0 + 128, 2.0 + 256 * 128]
    out = skeleton.normalise(joints, frame_size=(256, 128), mode="paper")
    np.testing.assert_allclose(out[0, 0], [1.0, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose((out[0, 8] + out[0, 9]) / 2, 0.0, atol=1e-7)
    plain = skeleton.normalise(joints, frame_size=(256, 128), mode="none")
    np.testing.assert_allclose(plain[0, 0], [256, 128, 256 * 128])
    with pytest.raises(ValueError, match="unknown normalisation"):
        skeleton.normalise(joints, (1, 1), mode="zscore")
    np.testing.assert_array_equal(skeleton.normalise(joints, (256, 128)), out)  # paper by default


def test_normalisation_of_2d_joints_scales_x_and_y_only():
    joints = np.zeros((2, 14, 2))
    joints[:, 0] = [256.0, 128.0]  # hips at the origin
    out = skeleton.normalise(joints, frame_size=(256, 128))
    assert out.shape == (2, 14, 2)
    np.testing.assert_allclose(out[:, 0], [[1.0, 1.0], [1.0, 1.0]])


def test_outputs_are_float32_whatever_the_input():
    joints = np.random.default_rng(0).normal(size=(3, 14, 3))  # float64
    for mode in ("paper", "none"):
        assert skeleton.normalise(joints, (256, 128), mode).dtype == np.float32, mode
    assert skeleton.map_33_to_14(np.zeros((2, 33, 3))).dtype == np.float32
    assert skeleton.fill_missing(joints, np.array([True, False, True])).dtype == np.float32


def test_fill_missing_interpolates_and_copies_edges():
    seq = np.zeros((5, 1, 1), dtype=np.float32)
    seq[1, 0, 0], seq[3, 0, 0] = 2.0, 6.0
    present = np.array([False, True, False, True, False])
    filled = skeleton.fill_missing(seq, present)
    np.testing.assert_allclose(filled[:, 0, 0], [2.0, 2.0, 4.0, 6.0, 6.0])
    with pytest.raises(ValueError, match="^no frame has a detection; nothing to interpolate from$"):
        skeleton.fill_missing(seq, np.zeros(5, bool))
    # every joint and coordinate on its own; `present` may be 0/1 rather than bool
    wide = np.arange(5 * 14 * 3, dtype=np.float32).reshape(5, 14, 3)
    filled = skeleton.fill_missing(wide, np.array([1, 0, 0, 0, 1]))
    np.testing.assert_allclose(filled[2], (wide[0] + wide[4]) / 2)
    np.testing.assert_array_equal(filled[[0, 4]], wide[[0, 4]])


def test_left_right_pairs_follow_the_joint_names():
    # Derived from the names, not from the table: every l_X is paired with r_X, nothing else is.
    names = skeleton.JOINT_NAMES
    expected = {
        (names.index(name), names.index("r_" + name[2:])) for name in names if name.startswith("l_")
    }
    assert set(skeleton.LEFT_RIGHT_PAIRS) == expected
    assert len(skeleton.LEFT_RIGHT_PAIRS) == len(expected) == 6
    paired = {j for pair in skeleton.LEFT_RIGHT_PAIRS for j in pair}
    unpaired = [names[j] for j in range(skeleton.NUM_JOINTS) if j not in paired]
    assert unpaired == ["head", "neck"]
    assert (names[skeleton.L_HIP], names[skeleton.R_HIP]) == ("l_hip", "r_hip")


def test_flip_by_hand():
    # Joint j sits at x = j + 1, y = 10 (j + 1), z = 100 (j + 1): after the flip, slot j holds its
    # mirror joint's y and z and the negated x; head (0) and neck (1) stay where they are.
    joints = np.arange(1, 15, dtype=np.float32)[:, None] * np.array([1, 10, 100], np.float32)
    mirror = [0, 1, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12]
    expected = np.array([[-(m + 1), 10 * (m + 1), 100 * (m + 1)] for m in mirror], dtype=np.float32)
    np.testing.assert_array_equal(expected[:3], [[-1, 10, 100], [-2, 20, 200], [-4, 40, 400]])
    np.testing.assert_array_equal(skeleton.flip_joints(joints[None])[0], expected)
    np.testing.assert_array_equal(skeleton.flip_joints(joints[None, None])[0, 0], expected)
    np.testing.assert_array_equal(joints[0], [1, 10, 100])  # the input is not changed


def test_flip_works_on_tensors_and_2d_joints():
    import torch

    joints = torch.arange(28, dtype=torch.float32).reshape(1, 14, 2)  # joint j: x = 2j, y = 2j + 1
    flipped = skeleton.flip_joints(joints)
    assert torch.equal(flipped[0, 4], torch.tensor([-10.0, 11.0]))  # l_elbow slot ← r_elbow (5)
    assert torch.equal(flipped[0, 0], torch.tensor([-0.0, 1.0]))
    assert joints[0, 4, 0] == 8.0  # the input is not changed
    assert torch.equal(skeleton.flip_joints(flipped), joints)


def _walker(seed=0, frames=6):
    """A plausible hip-centred skeleton sequence (metres, y down) facing an arbitrary way."""
    rng = np.random.default_rng(seed)
    base = np.array(
        [
            [0, -0.65, 0],
            [0, -0.45, 0],
            [0.18, -0.45, 0],
            [-0.18, -0.45, 0],
            [0.2, -0.2, 0],
            [-0.2, -0.2, 0],
            [0.21, 0.05, 0],
            [-0.21, 0.05, 0],
            [0.1, 0, 0],
            [-0.1, 0, 0],
            [0.1, 0.45, 0],
            [-0.1, 0.45, 0],
            [0.1, 0.85, 0],
            [-0.1, 0.85, 0],
        ],
        dtype=np.float32,
    )
    sequence = base + rng.normal(0, 0.03, size=(frames, 14, 3)).astype(np.float32)
    return skeleton.rotate_yaw(sequence + np.array([0.5, 0.1, 2.0], np.float32), 0.7)


@pytest.mark.parametrize("angle", [0.4, 2.0, -2.9])
def test_unified_view_is_the_same_from_every_side(angle):
    walker = _walker()
    turned = skeleton.rotate_yaw(walker, angle)
    assert not np.allclose(
        skeleton.normalise(walker, (256, 128), "none"),
        skeleton.normalise(turned, (256, 128), "none"),
        atol=1e-3,
    )
    unified = skeleton.normalise(walker, (256, 128), "unified")
    np.testing.assert_allclose(
        skeleton.normalise(turned, (256, 128), "unified"), unified, atol=1e-5
    )
    # canonical facing: left hip on +x, on the x axis; vertical axis and bone lengths untouched
    lateral = unified[:, skeleton.L_HIP] - unified[:, skeleton.R_HIP]
    assert lateral[:, 0].mean() > 0 and abs(lateral[:, 2].mean()) < 0.02
    np.testing.assert_allclose(
        unified[..., 1], skeleton.normalise(walker, (1, 1), "none")[..., 1], atol=1e-6
    )


def test_unified_view_of_2d_joints_only_centres():
    joints = _walker()[..., :2]
    np.testing.assert_allclose(
        skeleton.normalise(joints, (256, 128), "unified"), joints - skeleton.hip_centre(joints)
    )


def test_joint_statistics_floor_near_constant_channels():
    walker = _walker(frames=50)
    walker[:, 5, 1] = 0.25  # a joint that never moves vertically
    mean, std = skeleton.joint_statistics([walker[:20], walker[20:]])
    np.testing.assert_allclose(mean, walker.mean(axis=0), atol=1e-5)
    assert std[5, 1] > 0 and std[5, 1] >= 0.05 * np.median(std[:, 1]) - 1e-9
    np.testing.assert_allclose(std[0, 0], walker[:, 0, 0].std(), rtol=1e-4)


def test_facing_angle_by_hand():
    joints = np.zeros((2, 14, 3), np.float32)
    joints[:, skeleton.L_HIP], joints[:, skeleton.R_HIP] = [0.1, 0, 0.1], [-0.1, 0, -0.1]
    joints[:, 2], joints[:, 3] = [0.2, 0.5, 0.2], [-0.2, 0.5, -0.2]  # shoulders, same axis
    assert skeleton.facing_angle(joints) == pytest.approx(np.pi / 4)  # right → left along x = z
    joints[:, :, 0] += 5.0  # where the body stands does not matter, only left minus right
    assert skeleton.facing_angle(joints) == pytest.approx(np.pi / 4)
    assert skeleton.facing_angle(np.zeros((3, 14, 3))) == 0.0  # no axis: no turn
    turned = skeleton.rotate_yaw(joints, np.pi / 4)
    assert turned.dtype == np.float32 and turned is not joints
    lateral = turned[0, skeleton.L_HIP] - turned[0, skeleton.R_HIP]
    np.testing.assert_allclose(lateral, [np.hypot(0.2, 0.2), 0.0, 0.0], atol=1e-6)  # now along +x
    np.testing.assert_allclose(turned[0, skeleton.L_HIP], [3.6769552, 0.0, -3.535534], rtol=1e-6)


def test_joint_statistics_by_hand():
    first = np.zeros((2, 14, 3))
    first[:, :, 0] = [[1.0], [3.0]]  # x: 1 then 3 on every joint
    mean, std = skeleton.joint_statistics([first, first])
    assert mean.dtype == std.dtype == np.float32 and mean.shape == std.shape == (14, 3)
    np.testing.assert_allclose(mean[:, 0], 2.0)
    np.testing.assert_allclose(std[:, 0], 1.0)
    np.testing.assert_array_equal(std[:, 1:], 1.0)  # never varies: std 1, not 0
    mean2, _ = skeleton.joint_statistics([first[:1], first[1:]])  # sequences of any length
    np.testing.assert_allclose(mean2[:, 0], 2.0)
    for nothing in ([np.zeros((0, 14, 3))], []):
        with pytest.raises(ValueError, match="^no joints to compute input statistics from$"):
            skeleton.joint_statistics(nothing)


def test_flip_negates_every_horizontal_channel_of_a_joined_input():
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(3, 14, 5)).astype(np.float32)  # world x, y, z then image x, y
    flipped = skeleton.flip_joints(joints, x_channels=(0, 3))
    np.testing.assert_array_equal(flipped[:, 3, [0, 3]], -joints[:, 2, [0, 3]])  # r ← l shoulder
    np.testing.assert_array_equal(flipped[:, 3, [1, 2, 4]], joints[:, 2, [1, 2, 4]])
    np.testing.assert_array_equal(skeleton.flip_joints(flipped, (0, 3)), joints)

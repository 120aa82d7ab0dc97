import numpy as np
import pytest

from pipeline import skeleton


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


def test_fill_missing_interpolates_and_copies_edges():
    seq = np.zeros((5, 1, 1), dtype=np.float32)
    seq[1, 0, 0], seq[3, 0, 0] = 2.0, 6.0
    present = np.array([False, True, False, True, False])
    filled = skeleton.fill_missing(seq, present)
    np.testing.assert_allclose(filled[:, 0, 0], [2.0, 2.0, 4.0, 6.0, 6.0])
    with pytest.raises(ValueError, match="no frame"):
        skeleton.fill_missing(seq, np.zeros(5, bool))


def test_flip_swaps_sides_and_mirrors_x():
    joints = np.random.default_rng(0).normal(size=(2, 14, 3)).astype(np.float32)
    flipped = skeleton.flip_joints(joints)
    np.testing.assert_allclose(flipped[:, 2, 0], -joints[:, 3, 0])
    np.testing.assert_allclose(flipped[:, 2, 1:], joints[:, 3, 1:])
    np.testing.assert_allclose(skeleton.flip_joints(flipped), joints)


def test_graph_helpers():
    hops = skeleton.hop_distances()
    assert hops[0, 1] == 1 and hops[6, 7] == 6 and np.isfinite(hops).all()
    adj = skeleton.adjacency()
    assert adj.sum() == 14 + 2 * len(skeleton.EDGES)

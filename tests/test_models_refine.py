"""The refinement network's input: every normalisation mode reaches the model at unit scale, z
included, identically in training and eval mode, with gradient on every coordinate."""

import numpy as np
import pytest
import torch

from pipeline.models.refine import JointRefinement
from pipeline.skeleton import NORMALISATION_MODES, joint_statistics, normalise
from pipeline.synth.layout import GT_FILE

FRAME_SIZE = (256, 128)


def gt_tracklets(root):
    return [np.load(path) for path in sorted(root.glob(f"session*/*/{GT_FILE}"))]


@pytest.mark.parametrize("mode", NORMALISATION_MODES)
def test_every_mode_reaches_the_network_at_unit_scale(synthetic_root, mode):
    sequences = [normalise(gt, FRAME_SIZE, mode) for gt in gt_tracklets(synthetic_root)]
    raw_std = np.concatenate(sequences).reshape(-1, 3).std(axis=0)
    refine = JointRefinement(3, (8, 8))
    refine.set_input_statistics(*joint_statistics(sequences))
    joints = torch.from_numpy(np.stack([s[:8] for s in sequences]))  # (B, T, 14, 3)
    refine.eval()
    with torch.no_grad():
        eval_inputs = refine.normalise_input(joints)
    refine.train()
    train_inputs = refine.normalise_input(joints)
    for inputs in (eval_inputs, train_inputs):
        per_coordinate = inputs.detach().reshape(-1, 3).std(dim=0)
        assert torch.all(per_coordinate > 0.5) and torch.all(per_coordinate < 2.0), (
            f"{mode}: input std per coordinate {per_coordinate.tolist()} (raw {raw_std.tolist()})"
        )
    # the eval-mode input is exactly the training-mode input
    assert torch.equal(eval_inputs, train_inputs.detach())
    # every coordinate, z included, carries gradient into the first layer
    refine.zero_grad()
    refine(joints).pow(2).mean().backward()
    column_grad = refine.mlp[0].weight.grad.abs().sum(dim=0)
    assert torch.all(column_grad > 0.1 * column_grad.max()), column_grad.tolist()


def test_without_statistics_paper_scale_stays_tiny():
    """The failure the standardisation exists for: Eq. 1 on metres leaves z ~1e-5."""
    refine = JointRefinement(3, (8, 8))
    rng = np.random.default_rng(0)
    metres = rng.normal(0, 0.2, size=(4, 8, 14, 3)).astype(np.float32)
    paper = metres / np.array([256, 128, 256 * 128], dtype=np.float32)
    assert refine.normalise_input(torch.from_numpy(paper))[..., 2].std() < 1e-4
    refine.set_input_statistics(*joint_statistics(list(paper)))
    assert refine.normalise_input(torch.from_numpy(paper))[..., 2].std() > 0.5


def test_statistics_travel_with_the_weights():
    refine = JointRefinement(3, (8,))
    mean, std = np.full((14, 3), 0.5, np.float32), np.full((14, 3), 2.0, np.float32)
    refine.set_input_statistics(mean, std)
    copy = JointRefinement(3, (8,))
    copy.load_state_dict(refine.state_dict())
    assert torch.equal(copy.input_std, refine.input_std)
    with pytest.raises(ValueError, match="positive"):
        refine.set_input_statistics(mean, np.zeros((14, 3), np.float32))


def test_per_joint_mlp_with_relu_between_layers_only():
    refine = JointRefinement()  # the paper's 3 → 128 → 512 → 2048
    assert [type(m).__name__ for m in refine.mlp] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [(m.in_features, m.out_features) for m in refine.mlp[::2]] == [
        (3, 128),
        (128, 512),
        (512, 2048),
    ]
    assert refine.out_channels == 2048
    small = JointRefinement(2, (8, 4))
    joints = torch.randn(2, 5, 14, 2)
    out = small(joints)
    assert out.shape == (2, 5, 14, 4) and small.out_channels == 4
    with torch.no_grad():  # shared across joints and frames: each joint's output is the MLP of it
        expected = small.mlp[2](torch.relu(small.mlp[0](joints)))
    torch.testing.assert_close(out, expected)
    assert (out < 0).any()  # no ReLU after the last layer
    with pytest.raises(ValueError, match="^refine_widths must name at least one layer width$"):
        JointRefinement(3, ())


def test_standardisation_by_hand():
    refine = JointRefinement(3, (4,))
    mean = np.arange(42, dtype=np.float64).reshape(14, 3)
    std = np.full((14, 3), 4.0)
    refine.set_input_statistics(mean, std)
    joints = torch.from_numpy(mean + 8.0).float()[None, None]  # two std above the mean
    torch.testing.assert_close(refine.normalise_input(joints), torch.full((1, 1, 14, 3), 2.0))
    torch.testing.assert_close(refine(joints), refine.mlp(torch.full((1, 1, 14, 3), 2.0)))
    good = np.zeros((14, 3))
    for bad_mean, bad_std in ((good, np.ones((14, 2))), (np.zeros((13, 3)), np.ones((14, 3)))):
        with pytest.raises(ValueError, match=r"^input statistics must be \(14, 3\), got \("):
            refine.set_input_statistics(bad_mean, bad_std)
    for bad in (np.zeros((14, 3)), np.full((14, 3), np.inf)):
        with pytest.raises(ValueError, match="^input std must be finite and positive$"):
            refine.set_input_statistics(good, bad)

import math

import pytest
import torch

from pipeline.losses import ReIDLoss, batch_hard_triplet


def unit(*angles_deg):
    angles = torch.tensor(angles_deg, dtype=torch.float64) * math.pi / 180
    return torch.stack([angles.cos(), angles.sin()], dim=1)


def test_batch_hard_triplet_by_hand():
    # Identity 0 at 0° and 90°, identity 1 at 180° and 60°. Distance = 1 − cos(angle between).
    embeddings = unit(0, 90, 180, 60)
    labels = torch.tensor([0, 0, 1, 1])
    d = lambda a, b: 1 - math.cos(math.radians(a - b))  # noqa: E731
    hinge = [
        max(0.0, d(0, 90) - min(d(0, 180), d(0, 60)) + 0.3),  # anchor 0°
        max(0.0, d(90, 0) - min(d(90, 180), d(90, 60)) + 0.3),  # anchor 90°
        max(0.0, d(180, 60) - min(d(180, 0), d(180, 90)) + 0.3),  # anchor 180°
        max(0.0, d(60, 180) - min(d(60, 0), d(60, 90)) + 0.3),  # anchor 60°
    ]
    loss = batch_hard_triplet(embeddings, labels, margin=0.3)
    assert loss.item() == pytest.approx(sum(hinge) / 4, abs=1e-6)


def test_triplet_is_zero_when_identities_are_far_apart():
    embeddings = unit(0, 1, 180, 181) * 5.0  # scale does not matter: cosine geometry
    assert batch_hard_triplet(embeddings, torch.tensor([0, 0, 1, 1])).item() == pytest.approx(0.0)


def test_triplet_without_positives_is_zero_and_differentiable():
    embeddings = torch.randn(3, 4, requires_grad=True)
    loss = batch_hard_triplet(embeddings, torch.tensor([0, 1, 2]))
    loss.backward()
    assert loss.item() == 0.0 and embeddings.grad is not None


def test_combined_loss_weights_and_gradients():
    torch.manual_seed(0)
    embeddings = torch.randn(8, 16, requires_grad=True)
    logits = torch.randn(8, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    parts = ReIDLoss(0.7, 0.3, 0.3)(embeddings, logits, labels)
    expected_ce = torch.nn.functional.cross_entropy(logits, labels)
    assert parts.cross_entropy.item() == pytest.approx(expected_ce.item())
    assert parts.total.item() == pytest.approx(
        0.7 * parts.cross_entropy.item() + 0.3 * parts.triplet.item()
    )
    parts.total.backward()
    assert embeddings.grad.abs().sum() > 0 and logits.grad.abs().sum() > 0


def test_branch_loss_adds_each_branch_triplet_only_when_switched_on():
    torch.manual_seed(0)
    embeddings = torch.randn(8, 4)
    logits = torch.randn(8, 3)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    branches = torch.randn(8, 2, 4, requires_grad=True)
    plain = ReIDLoss()(embeddings, logits, labels, branches)
    with_branches = ReIDLoss(branch_weight=0.5)(embeddings, logits, labels, branches)
    expected = (
        0.5
        * (batch_hard_triplet(branches[:, 0], labels) + batch_hard_triplet(branches[:, 1], labels))
        / 2
    )
    torch.testing.assert_close(with_branches.total - plain.total, expected)
    with_branches.total.backward()
    assert branches.grad.abs().sum() > 0
    one_branch = ReIDLoss(branch_weight=0.5)(embeddings, logits, labels, branches[:, :1])
    torch.testing.assert_close(one_branch.total, plain.total)

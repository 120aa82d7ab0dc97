import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.losses import ClothesAdversary, ReIDLoss, batch_hard_triplet, clothes_adversarial_loss


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


def test_clothes_adversarial_loss_by_hand():
    # one sample wearing outfit 0 of its person (outfits 0, 1), outfit 2 is somebody else's
    logits = torch.tensor([[2.0, 1.0, 0.5]], dtype=torch.float64)
    positive = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    eps = 0.1
    # each outfit's log probability against the other people's outfits only
    lp = [
        logits[0, c].item() - math.log(math.exp(0.5) + math.exp(logits[0, c].item()))
        for c in (0, 1)
    ]
    expected = -((1 - eps + eps / 2) * lp[0] + (eps / 2) * lp[1])
    loss = clothes_adversarial_loss(logits, torch.tensor([0]), positive, eps)
    assert loss.item() == pytest.approx(expected)


def test_the_adversary_pulls_a_person_s_outfits_together_and_trains_only_its_prototypes():
    torch.manual_seed(0)
    # identity 0 wears global outfits 3 and 5, identity 1 outfit 4 (training outfits 0, 1, 2)
    adversary = ClothesAdversary(2, clothes_identity=[0, 1, 0], clothes_class=[-1, -1, -1, 0, 2, 1])
    with torch.no_grad():
        # outfit classes at 0° (worn), −60° (another person's), 120° (the person's other outfit)
        adversary.prototypes.copy_(unit(0, -60, 120).float())
    embeddings = unit(10).float().requires_grad_(True)  # identity 0 in outfit 3, near class 0
    classify, adversarial = adversary(embeddings, torch.tensor([3]), torch.tensor([0]))
    (grad,) = torch.autograd.grad(adversarial, embeddings, retain_graph=True)
    # descending the adversarial loss turns the embedding toward the person's other outfit
    turned = F.normalize(embeddings - 0.1 * grad, dim=1)
    assert turned[0, 1] > F.normalize(embeddings, dim=1)[0, 1]
    classify.backward()
    assert adversary.prototypes.grad is not None and embeddings.grad is None  # features detached
    with pytest.raises(ValueError, match="not a training outfit"):
        adversary(embeddings, torch.tensor([0]), torch.tensor([0]))


def test_the_adversary_enters_the_loss_from_its_first_epoch():
    torch.manual_seed(0)
    adversary = ClothesAdversary(4, clothes_identity=[0, 1], clothes_class=[0, 1])
    loss = ReIDLoss(clothes_weight=1.0, adversary=adversary, clothes_start=2)
    embeddings, logits = torch.randn(4, 4), torch.randn(4, 2)
    labels = clothes = torch.tensor([0, 0, 1, 1])
    plain = ReIDLoss()(embeddings, logits, labels).total
    classify, adversarial = adversary(embeddings, clothes, labels)
    loss.set_epoch(1)
    assert loss(embeddings, logits, labels, None, clothes).total.item() == pytest.approx(
        (plain + classify).item()
    )
    loss.set_epoch(2)
    assert loss(embeddings, logits, labels, None, clothes).total.item() == pytest.approx(
        (plain + classify + adversarial).item()
    )

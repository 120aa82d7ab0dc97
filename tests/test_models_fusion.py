"""The adaptive fusion module (paper §3.3): projections into a common space, per-sample branch
weights from all branches at once (softmax), the weighted sum through a BatchNorm."""

import pytest
import torch

from pipeline.models.fusion import AdaptiveFusion, projection

SIZES = (5, 3, 4)


def branch_inputs(batch=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, generator=generator) for c in SIZES]


def fusion(seed=0, dim=8):
    torch.manual_seed(seed)
    module = AdaptiveFusion(SIZES, dim=dim)
    with torch.no_grad():  # non-trivial BatchNorm statistics and affine parameters
        for bn in [module.bn, *(p[1] for p in module.projections)]:
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return module


def test_projection_is_linear_without_bias_then_batchnorm_then_relu():
    layer = projection(5, 7)
    assert [type(m).__name__ for m in layer] == ["Linear", "BatchNorm1d", "ReLU"]
    assert layer[0].bias is None and layer[0].weight.shape == (7, 5)
    out = layer.train()(torch.randn(9, 5))
    assert out.shape == (9, 7) and (out >= 0).all() and (out > 0).any()


def test_starts_from_equal_weights_and_the_bn_of_the_mean_projection():
    module = fusion().eval()
    inputs = branch_inputs()
    fused, weights = module(inputs)
    assert fused.shape == (6, 8) and weights.shape == (6, 3)
    torch.testing.assert_close(weights, torch.full((6, 3), 1 / 3))
    projected = torch.stack([p(e) for p, e in zip(module.projections, inputs, strict=True)], 1)
    torch.testing.assert_close(fused, module.bn(projected.mean(1)))


def test_weights_are_a_per_sample_softmax_that_looks_at_every_branch():
    module = fusion().eval()
    with torch.no_grad():
        module.weighting.weight.normal_(0, 0.5)
        module.weighting.bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    inputs = branch_inputs()
    fused, weights = module(inputs)
    torch.testing.assert_close(weights.sum(1), torch.ones(6))
    assert (weights > 0).all() and weights.std(0).min() > 0  # differ between samples
    projected = torch.stack([p(e) for p, e in zip(module.projections, inputs, strict=True)], 1)
    logits = module.weighting(projected.reshape(6, -1, 1)).squeeze(-1)
    torch.testing.assert_close(weights, logits.softmax(1))
    torch.testing.assert_close(fused, module.bn((weights.unsqueeze(-1) * projected).sum(1)))
    # branch 0's weight moves when only branch 2's input changes
    changed = [inputs[0], inputs[1], inputs[2] + 2.0]
    assert (module(changed)[1][:, 0] - weights[:, 0]).abs().max() > 1e-3


def test_a_dominant_weight_selects_its_branch():
    module = fusion().eval()
    with torch.no_grad():
        module.weighting.bias.copy_(torch.tensor([0.0, 30.0, 0.0]))
    inputs = branch_inputs()
    fused, weights = module(inputs)
    assert (weights[:, 1] > 0.999).all()
    torch.testing.assert_close(
        fused, module.bn(module.projections[1](inputs[1])), atol=1e-4, rtol=0
    )


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_every_branch_changes_the_fused_embedding(mode):
    module = fusion()
    module.train(mode == "train")
    inputs, noise = branch_inputs(), branch_inputs(seed=1)  # per-sample changes: a shift common
    with torch.no_grad():  # to the batch is what train-mode BatchNorm removes, by design
        fused, _ = module(inputs)
        for k in range(len(SIZES)):
            changed = [e + 0.5 * noise[i] if i == k else e for i, e in enumerate(inputs)]
            assert (module(changed)[0] - fused).abs().max() > 1e-2, k


def test_two_branches_are_weighted_too():
    torch.manual_seed(0)
    module = AdaptiveFusion((5, 3)).eval()
    assert module.bn.num_features == 512  # the default common dimension
    inputs = branch_inputs()[:2]
    fused, weights = module(inputs)
    torch.testing.assert_close(weights, torch.full((6, 2), 0.5))
    projected = torch.stack([p(e) for p, e in zip(module.projections, inputs, strict=True)], 1)
    torch.testing.assert_close(fused, module.bn(projected.mean(1)))


def test_one_branch_needs_no_weighting():
    torch.manual_seed(0)
    module = AdaptiveFusion((5,), dim=4).eval()
    assert module.weighting is None
    x = torch.randn(3, 5)
    fused, weights = module([x])
    assert torch.equal(weights, torch.ones(3, 1))
    torch.testing.assert_close(fused, module.bn(module.projections[0](x)))


def test_wrong_branch_counts_fail_clearly():
    with pytest.raises(ValueError, match="^the fusion module needs at least one branch$"):
        AdaptiveFusion(())
    with pytest.raises(ValueError, match="expected 3 branch embeddings, got 2"):
        fusion()(branch_inputs()[:2])


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_each_branch_alone_is_its_projection_through_the_eval_bn(mode):
    module = fusion()
    module.train(mode == "train")
    inputs = branch_inputs()
    projected = module.project(inputs)
    before = {k: v.clone() for k, v in module.bn.state_dict().items()}
    alone = module.alone(projected)
    assert alone.shape == projected.shape == (6, 3, 8)
    for k in range(3):  # what a one-hot weight on branch k gives in eval mode
        torch.testing.assert_close(alone[:, k], module.bn.eval()(projected[:, k]))
    assert all(torch.equal(before[k], v) for k, v in module.bn.state_dict().items())
    torch.manual_seed(0)
    single = AdaptiveFusion((5,), dim=8).eval()
    only = [inputs[0]]
    torch.testing.assert_close(single.alone(single.project(only))[:, 0], single(only)[0])


def test_refinement_starts_as_none_and_lets_each_embedding_take_from_the_others():
    torch.manual_seed(0)
    plain = AdaptiveFusion((5, 3), dim=4).eval()
    torch.manual_seed(0)
    refined = AdaptiveFusion((5, 3), dim=4, refine=True).eval()
    embeddings = [torch.randn(6, 5), torch.randn(6, 3)]
    with torch.no_grad():
        projected = refined.project(embeddings)
        torch.testing.assert_close(refined.combine(projected)[0], plain.combine(projected)[0])
        refined.refine.weight.normal_()
        changed = projected.clone()
        changed[:, 1] += 1.0  # only the second branch moves …
        moved = refined.refined(changed) - refined.refined(projected)
    assert moved[:, 0].abs().sum() > 0  # … and the first one's refined embedding follows it
    torch.testing.assert_close(plain.refined(projected), projected)
    assert AdaptiveFusion((5,), dim=4, refine=True).refine is None  # nothing to refer to


def test_branch_dropout_leaves_branches_out_of_training_samples_only():
    torch.manual_seed(0)
    module = AdaptiveFusion(SIZES, dim=8, branch_dropout=0.5)
    inputs = branch_inputs(batch=64)
    _, weights = module(inputs)
    dropped = weights == 0
    assert dropped.any(dim=0).all()  # every branch is left out of some samples
    assert not dropped.all(dim=1).any()  # never all of a sample's branches
    assert torch.allclose(weights.sum(dim=1), torch.ones(64))
    plain = AdaptiveFusion(SIZES, dim=8)
    plain.load_state_dict(module.state_dict())  # after the training pass moved the BN statistics
    module.eval(), plain.eval()
    fused, weights = module(inputs)
    expected, expected_weights = plain(inputs)
    assert torch.equal(weights, expected_weights) and torch.equal(fused, expected)


def test_branch_dropout_must_be_a_probability_below_one():
    with pytest.raises(ValueError, match="branch_dropout"):
        AdaptiveFusion(SIZES, branch_dropout=1.0)


def test_branch_prior_scales_the_weights_in_eval_mode_only():
    module = fusion().eval()
    with torch.no_grad():
        module.weighting.weight.normal_(0, 0.5)
    inputs = branch_inputs()
    _, learned = module(inputs)
    scales = torch.tensor([0.0, 0.25, 1.0])
    module.branch_prior.copy_(scales.log())
    _, scaled = module(inputs)
    expected = learned * scales
    torch.testing.assert_close(scaled, expected / expected.sum(1, keepdim=True))
    assert (scaled[:, 0] == 0).all()
    module.train()
    torch.manual_seed(1)
    _, training = module(inputs)
    assert (training[:, 0] > 0).all()  # training never sees the calibration
    assert "branch_prior" in module.state_dict()  # the scored checkpoint carries it

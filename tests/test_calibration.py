"""Fusion calibration on validation identities: the candidate grid, and the choice on constructed
projections where the right answer is known (a branch that is pure noise across clothes)."""

import numpy as np
import torch

from pipeline.calibration import Calibration, candidate_scales, choose_scales, fused_features
from pipeline.metrics import Labels
from pipeline.models.fusion import AdaptiveFusion

DIM = 16


def test_candidates_start_from_the_learned_fusion_and_are_normalised():
    for branches, count in ((2, 7), (3, 37)):
        candidates = candidate_scales(branches)
        assert candidates[0] == (1.0,) * branches
        assert len(candidates) == len(set(candidates)) == count
        assert all(max(c) == 1.0 and len(c) == branches for c in candidates)


def validation_set(seed=0, ids=8, outfits=2, clips=3):
    """Per identity and outfit one tracklet of `clips` clips; branch 0 codes the outfit (noise
    across clothes), branch 1 the identity with noise."""
    rng = np.random.default_rng(seed)
    id_codes = rng.normal(size=(ids, DIM))
    outfit_codes = rng.normal(size=(ids, outfits, DIM)) * 3
    projected, index, pids, clothes = [], [], [], []
    for pid in range(ids):
        for outfit in range(outfits):
            tracklet = len(pids)
            pids.append(f"p{pid}"), clothes.append(f"p{pid}c{outfit}")
            for _ in range(clips):
                appearance = outfit_codes[pid, outfit] + rng.normal(size=DIM) * 0.1
                gait = id_codes[pid] + rng.normal(size=DIM) * 0.8
                projected.append(np.stack([appearance, gait]))
                index.append(tracklet)
    labels = Labels(np.array(pids), np.arange(len(pids)) % 2, np.array(clothes))
    return torch.tensor(np.array(projected), dtype=torch.float32), torch.tensor(index), labels


def eval_fusion():
    return AdaptiveFusion((DIM, DIM), dim=DIM).eval()  # equal learned weights, identity BN


def test_a_branch_that_fails_across_clothes_is_scaled_down():
    projected, index, labels = validation_set()
    fusion = eval_fusion()
    scales, scores, best = choose_scales(fusion, projected, index, labels)
    assert scales[0] < 1.0 and scales[1] == 1.0
    assert scores[best] > scores[0]  # better than the learned (equal-weight) fusion
    # the chosen prior is left on the module: its features score as the best candidate did
    torch.testing.assert_close(fusion.branch_prior.exp(), torch.tensor(scales))


def test_a_tie_keeps_the_learned_fusion():
    projected, index, labels = validation_set()
    same = projected[:, 1:].expand(-1, 2, -1).contiguous()  # both branches carry the same
    fusion = eval_fusion()
    scales, scores, best = choose_scales(fusion, same, index, labels)
    assert best == 0 and scales == (1.0, 1.0)
    assert (fusion.branch_prior == 0).all()


def test_fused_features_average_clips_per_tracklet_and_normalise():
    projected, index, labels = validation_set(clips=2)
    features = fused_features(eval_fusion(), projected, index, len(labels.pids))
    expected = torch.nn.functional.normalize(projected.mean(1).view(-1, 2, DIM).mean(1), dim=1)
    np.testing.assert_allclose(features, expected.numpy(), atol=1e-5)


def test_a_dropped_branch_is_minus_infinity_in_the_prior():
    calibration = Calibration({"appearance": 0.0, "gait": 1.0}, 50.0, 60.0, 8, 7)
    assert calibration.prior.tolist() == [float("-inf"), 0.0]
    assert calibration.record()["scales"] == {"appearance": 0.0, "gait": 1.0}

"""Information survives the model: on joints at the scale the skeleton cache holds them (paper
Eq. 1 on MediaPipe's metric landmarks, z ~1e-5), every coordinate and every branch changes the
embedding, two different skeletons give different embeddings — in training and in eval mode — and
a skeleton-only model can learn identities from them.

Shapes and non-zero gradients were checked elsewhere and let an input BatchNorm that erased the
coordinates through; these checks compare outputs."""

import dataclasses

import numpy as np
import pytest
import torch
from tiny_models import TINY_MODEL_FIELDS, TINY_RUN_MODEL

from pipeline.confidence import chance_levels
from pipeline.config import load_config
from pipeline.data import load_frames, load_splits
from pipeline.losses import ReIDLoss
from pipeline.metrics import Labels, evaluate
from pipeline.models.batchnorm import recalibrate
from pipeline.training import build_training_model

MODES = ("train", "eval")


def quiet(_message):
    pass


def config_for(root, cache, **model):
    return load_config(
        "demo",
        overrides={
            "data": {"dataset": "ccvid", "root": str(root), "cache": str(cache)},
            "model": {**TINY_RUN_MODEL, **model},
            "train": {"height": 32, "width": 16},
        },
    )


@pytest.fixture(scope="module")
def cache_clips(synthetic_root, skeleton_cache):
    """The model as training builds it (joint standardisation from the training joints) and real
    4-frame clips of 6 tracklets: frames and cached joints."""
    config = config_for(synthetic_root, skeleton_cache)
    splits = load_splits(config, needs_joints=True, log=quiet)
    torch.manual_seed(0)
    model = build_training_model(config, splits)
    sources = (splits.train + splits.query + splits.gallery)[::2][:6]
    frames = torch.from_numpy(
        np.stack([load_frames(s.tracklet, [0, 2, 4, 6], 32, 16) for s in sources])
    )
    joints = torch.from_numpy(np.stack([s.joints[[0, 2, 4, 6]] for s in sources]))
    with torch.no_grad():  # eval-mode BatchNorm statistics from these clips, as training gives
        for _ in range(3):
            model.train()(frames, joints)
    return model, frames, joints


def embed(model, mode, frames, joints):
    model.train(mode == "train")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        embedding = model(frames, joints).embedding
    model.load_state_dict(state)  # a training-mode pass must not move the statistics
    return embedding


def relative_change(a, b):
    return float((a - b).norm(dim=1).div(b.norm(dim=1)).min())  # the least-changed sample


def test_joints_are_at_cache_scale(cache_clips):
    _, _, joints = cache_clips
    spread = joints.reshape(-1, 3).std(dim=0)
    assert spread[0] < 1e-2 and spread[2] < 1e-3  # not unit scale: what a model must cope with


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("coordinate", [0, 1, 2], ids=["x", "y", "z"])
def test_every_coordinate_changes_the_embedding(cache_clips, mode, coordinate):
    model, frames, joints = cache_clips
    base = embed(model, mode, frames, joints)
    generator = torch.Generator().manual_seed(coordinate)
    changed = joints.clone()
    scale = joints[..., coordinate].std()
    changed[..., coordinate] += 0.5 * scale * torch.randn(joints.shape[:-1], generator=generator)
    assert relative_change(embed(model, mode, frames, changed), base) > 0.02  # measured ≥ 0.12


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("branch", ["appearance", "shape", "gait"])
def test_every_branch_changes_the_embedding(cache_clips, mode, branch):
    model, frames, joints = cache_clips
    base = embed(model, mode, frames, joints)
    generator = torch.Generator().manual_seed(1)

    def perturb(_module, _inputs, output):  # per-sample noise at the branch output's own scale
        return output + 0.5 * output.std() * torch.randn(output.shape, generator=generator)

    handle = getattr(model, branch).register_forward_hook(perturb)
    try:
        changed = embed(model, mode, frames, joints)
    finally:
        handle.remove()
    assert relative_change(changed, base) > 0.02  # measured ≥ 0.16


@pytest.mark.parametrize("mode", MODES)
def test_two_skeletons_give_two_embeddings(cache_clips, mode):
    """The same frames with the joints of two other tracklets: the skeleton alone separates them."""
    model, frames, joints = cache_clips
    same_frames = frames[:1].expand(2, *frames.shape[1:])
    both = embed(model, mode, same_frames, joints[:2])
    assert relative_change(both[:1], both[1:]) > 0.05  # measured ≥ 1.7
    again = embed(model, mode, same_frames, joints[:1].expand(2, *joints.shape[1:]))
    torch.testing.assert_close(again[0], again[1])  # and the same input gives the same output


def clips_of(sources, seq_len=4):
    """Every tracklet's consecutive clips of `seq_len` cached frames, with their sources."""
    joints, owner = [], []
    for index, source in enumerate(sources):
        for start in range(0, source.num_frames - seq_len + 1, seq_len):
            joints.append(source.joints[start : start + seq_len])
            owner.append(index)
    return torch.from_numpy(np.stack(joints)), np.array(owner)


def test_skeleton_only_model_overfits_the_identities(synthetic_root, skeleton_cache):
    """All 4 identities of the tiny set (16 tracklets, 32 clips) as classes: a small
    skeleton-only model fits them in 40 full-batch steps (seconds); chance is 25 %. Then
    cloth-changing retrieval among the same tracklets scores far above the measured chance."""
    config = config_for(synthetic_root, skeleton_cache, use_appearance=False, **TINY_MODEL_FIELDS)
    splits = load_splits(config, needs_joints=True, log=quiet)
    sources = splits.train + splits.query + splits.gallery
    pids = sorted({s.tracklet.pid for s in sources})
    joints, owner = clips_of(sources)
    labels = torch.tensor([pids.index(sources[i].tracklet.pid) for i in owner])
    torch.manual_seed(0)
    every_tracklet = dataclasses.replace(splits, train=sources, class_pids=pids)
    model = build_training_model(config, every_tracklet).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = ReIDLoss.from_config(config.train)
    for _ in range(40):
        optimiser.zero_grad()
        output = model(None, joints)
        loss_fn(output.embedding, output.logits, labels).total.backward()
        optimiser.step()
    recalibrate(model, [joints], lambda batch: model(None, batch))  # as training ends
    accuracy = {}
    with torch.no_grad():
        for mode in MODES:
            predicted = model.train(mode == "train")(None, joints).logits.argmax(1)
            accuracy[mode] = float((predicted == labels).float().mean())
        clip_features = model.eval()(None, joints).embedding.numpy()
    assert accuracy["train"] >= 0.95 and accuracy["eval"] >= 0.95, accuracy  # measured 1.0, 1.0

    features = np.stack([clip_features[owner == i].mean(0) for i in range(len(sources))])
    labels_all = Labels(
        np.array([s.tracklet.pid for s in sources]),
        np.array([s.camera for s in sources]),
        np.array([s.tracklet.clothes for s in sources]),
    )
    cc = evaluate(features, features, labels_all, labels_all)["cc"]
    chance = chance_levels(labels_all, labels_all, settings=("cc",))["cc"]["R-1"]
    print(
        f"overfit: CC R-1 {100 * cc.cmc[0]:.1f} % over {cc.queries} queries, chance {chance:.1f} %"
    )
    assert cc.queries >= 8 and 100 * cc.cmc[0] >= chance + 40, (100 * cc.cmc[0], chance)

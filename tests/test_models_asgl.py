"""The ASGL model: every ablation variant builds, runs, and trains end to end."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_model_config

from pipeline.config import load_config
from pipeline.models import ASGLOutput, build_model, count_parameters
from pipeline.skeleton import LEFT_RIGHT_PAIRS, NUM_JOINTS, flip_joints

B, T, H, W = 2, 4, 32, 16
NUM_CLASSES = 5

VARIANTS = {
    "full": ({}, ("appearance", "shape", "gait")),
    "no-appearance": ({"use_appearance": False}, ("shape", "gait")),
    "no-shape": ({"use_shape": False}, ("appearance", "gait")),
    "no-gait": ({"use_gait": False}, ("appearance", "shape")),
    "appearance-only": ({"use_shape": False, "use_gait": False}, ("appearance",)),
    "shape-only": ({"use_appearance": False, "use_gait": False}, ("shape",)),
    "gcn": ({"graph": "gcn"}, ("appearance", "shape", "gait")),
    "2d": ({"pose": "2d"}, ("appearance", "shape", "gait")),
    "3d+2d": ({"pose": "3d+2d"}, ("appearance", "shape", "gait")),
    "gcn-2d-no-appearance": (
        {"graph": "gcn", "pose": "2d", "use_appearance": False},
        ("shape", "gait"),
    ),
}


def clip_inputs(model, batch: int = B):
    frames = torch.randn(batch, T, 3, H, W) if model.needs_frames else None
    joints = (
        torch.randn(batch, T, NUM_JOINTS, model.pose_channels) * 1e-3
        if model.needs_joints
        else None
    )
    return frames, joints


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_output_shapes(variant):
    changes, branches = VARIANTS[variant]
    torch.manual_seed(0)
    model = build_model(tiny_model_config(**changes), NUM_CLASSES)
    assert model.branch_names == branches
    assert model.needs_frames == ("appearance" in branches)
    assert model.needs_joints == ("shape" in branches or "gait" in branches)
    out = model(*clip_inputs(model))
    assert isinstance(out, ASGLOutput)
    assert out.embedding.shape == (B, 6)
    assert out.logits.shape == (B, NUM_CLASSES)
    assert out.branch_weights.shape == (B, len(branches))
    torch.testing.assert_close(out.branch_weights.sum(1), torch.ones(B))
    model.eval()
    with torch.no_grad():
        assert model(*clip_inputs(model, batch=1)).embedding.shape == (1, 6)


@pytest.mark.parametrize("variant", ["full", "gcn", "appearance-only", "gcn-2d-no-appearance"])
def test_gradients_reach_every_parameter(variant):
    changes, _ = VARIANTS[variant]
    torch.manual_seed(0)
    model = build_model(tiny_model_config(**changes), NUM_CLASSES)
    inputs, labels = clip_inputs(model, batch=4), torch.tensor([0, 1, 2, 3])
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)

    def dead_after_a_backward() -> list[str]:
        optimiser.zero_grad()
        out = model(*inputs)
        (F.cross_entropy(out.logits, labels) + out.embedding.pow(2).mean()).backward()
        return [
            n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
        ]

    first = dead_after_a_backward()
    # only ST-GAT's attention may wait one step: its gate starts at 0 and is what opens it
    assert all(".query." in n or ".key." in n or ".value." in n for n in first)
    assert ("gait.blocks.0.query.weight" in first) == (variant == "full")
    optimiser.step()
    assert dead_after_a_backward() == []


def test_embedding_is_the_fused_feature_after_the_fusion_bn():
    model = build_model(tiny_model_config(), NUM_CLASSES)
    captured = {}
    model.fusion.bn.register_forward_hook(lambda _m, _i, output: captured.setdefault("bn", output))
    out = model(*clip_inputs(model))
    assert torch.equal(out.embedding, captured["bn"])
    torch.testing.assert_close(out.logits, out.embedding @ model.classifier.weight.t())


def test_no_classifier_when_num_classes_is_zero():
    model = build_model(tiny_model_config(), 0)
    assert model.classifier is None
    out = model(*clip_inputs(model))
    assert out.logits is None and out.embedding.shape == (B, 6)


def test_at_least_one_branch_must_remain():
    config = tiny_model_config(use_appearance=False, use_shape=False, use_gait=False)
    with pytest.raises(ValueError, match="at least one branch"):
        build_model(config, NUM_CLASSES)


@pytest.mark.parametrize(("field", "value"), [("graph", "gin"), ("pose", "4d")])
def test_unknown_switch_values_fail(field, value):
    with pytest.raises(ValueError, match=field):
        build_model(tiny_model_config(**{field: value}), NUM_CLASSES)


def test_missing_or_mis_shaped_inputs_fail_clearly():
    model = build_model(tiny_model_config(pose="2d"), NUM_CLASSES)
    frames, joints = clip_inputs(model)
    with pytest.raises(ValueError, match="frames"):
        model(None, joints)
    with pytest.raises(ValueError, match="joints"):
        model(frames, None)
    with pytest.raises(ValueError, match=r"\(B, T, 14, 2\)"):
        model(frames, torch.randn(B, T, NUM_JOINTS, 3))
    skeleton_only = build_model(tiny_model_config(use_appearance=False), NUM_CLASSES)
    assert skeleton_only(None, clip_inputs(skeleton_only)[1]).embedding.shape == (B, 6)


def test_count_parameters_per_branch():
    full = count_parameters(build_model(tiny_model_config(), NUM_CLASSES))
    no_gait = count_parameters(build_model(tiny_model_config(use_gait=False), NUM_CLASSES))
    parts = ("appearance", "refine", "shape", "gait", "fusion", "classifier")
    assert set(full) == {*parts, "total"}
    assert full["total"] == sum(full[p] for p in parts)
    assert no_gait["gait"] == 0 and full["gait"] > 0
    assert full["classifier"] == 6 * NUM_CLASSES
    assert full["appearance"] > 11_000_000  # ResNet-18


@pytest.mark.parametrize("pose", ["3d", "2d"])
def test_flipped_clip_feeds_the_flipped_skeleton(pose):
    """Mirroring a clip (frames flipped along W, joints through flip_joints) hands the skeleton
    branches exactly the mirrored skeleton: x negated and left/right joints swapped."""
    torch.manual_seed(0)
    model = build_model(tiny_model_config(pose=pose), NUM_CLASSES).eval()
    seen = []
    model.refine.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    frames_seen = []
    model.appearance.backbone.conv1.register_forward_pre_hook(
        lambda _m, args: frames_seen.append(args[0].clone())
    )
    frames, joints = clip_inputs(model)
    with torch.no_grad():
        model(frames, joints)
        model(frames.flip(-1), flip_joints(joints))
    original, mirrored = seen
    assert torch.equal(mirrored, flip_joints(original))
    for left, right in LEFT_RIGHT_PAIRS:
        assert torch.equal(mirrored[..., right, 0], -original[..., left, 0])
        assert torch.equal(mirrored[..., left, 1:], original[..., right, 1:])
    assert torch.equal(frames_seen[1], frames_seen[0].flip(-1))


def test_frame_flip_axis_is_the_skeleton_x_axis():
    """Joints drawn into a frame, the frame flipped along its last (width) axis, the joints read
    back and relabelled anatomically (a mirrored left arm looks like a right arm), hip-centred:
    the result is exactly flip_joints of the hip-centred original, for the 2D ablation's
    image-coordinate skeleton."""
    rng = torch.Generator().manual_seed(0)
    xs = torch.randperm(W, generator=rng)[:NUM_JOINTS].float()  # distinct columns
    ys = torch.randint(0, H, (NUM_JOINTS,), generator=rng).float()
    frame = torch.zeros(H, W)
    for joint in range(NUM_JOINTS):
        frame[int(ys[joint]), int(xs[joint])] = joint + 1  # the label is the joint id

    def read_joints(image):
        found = torch.zeros(NUM_JOINTS, 2)
        for joint in range(NUM_JOINTS):
            row, col = (image == joint + 1).nonzero()[0].tolist()
            found[joint] = torch.tensor([col, row], dtype=torch.float32)
        return found

    def hip_centred(points):
        return points - points[[8, 9]].mean(0, keepdim=True)

    swap = list(range(NUM_JOINTS))
    for left, right in LEFT_RIGHT_PAIRS:
        swap[left], swap[right] = right, left
    original = hip_centred(read_joints(frame))
    mirrored = hip_centred(read_joints(frame.flip(-1))[swap])
    torch.testing.assert_close(mirrored, flip_joints(original))


def test_demo_and_paper_profiles_build():
    demo = load_config("demo").model
    model = build_model(demo, 10)
    assert model.branch_names == ("appearance", "shape", "gait")
    assert model.appearance.backbone.depth == 18
    paper = load_config("paper").model
    assert (paper.backbone_depth, paper.refine_widths, paper.stgat_channels) == (
        50,
        (128, 512, 2048),
        (128, 256),
    )


def test_the_model_carries_its_input_contract():
    """As timm's pretrained_cfg: the frame size it was built for, the normalisation the frame
    loader applies, and the pose it reads; export and search take them from the model."""
    import numpy as np

    from pipeline.data.dataset import IMAGENET_MEAN, IMAGENET_STD

    model = build_model(tiny_model_config(pose="2d"), 0, frame_size=(H, W))
    contract = model.input_contract
    assert contract.frame_size == (H, W) and contract.pose == "2d" and contract.pose_channels == 2
    np.testing.assert_array_equal(np.float32(contract.mean), IMAGENET_MEAN)
    np.testing.assert_array_equal(np.float32(contract.std), IMAGENET_STD)
    assert build_model(tiny_model_config(), 0).input_contract.frame_size == (256, 128)

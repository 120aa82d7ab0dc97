"""The own ResNet matches torchvision's parameter layout and loads torchvision checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from tiny_models import tiny_model_config

from pipeline.models import ResNet, build_model, load_backbone_weights

DATA = Path(__file__).parent / "data"


def read_key_list(name: str) -> list[tuple[str, list[int]]]:
    entries = []
    for line in (DATA / name).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split(" ", 1)
        entries.append((key, [int(s) for s in shape.strip("[]").split(",") if s.strip()]))
    return entries


@pytest.mark.parametrize("depth", [18, 50])
def test_state_dict_names_and_shapes_equal_torchvision(depth):
    expected = read_key_list(f"torchvision_resnet{depth}_keys.txt")
    ours = [
        (k, list(v.shape))
        for k, v in ResNet(depth, last_stride=2, num_classes=1000).state_dict().items()
    ]
    assert ours == expected


def test_last_stride_changes_the_map_not_the_weights():
    x = torch.randn(1, 3, 64, 32)
    stride1, stride2 = ResNet(18, last_stride=1).eval(), ResNet(18, last_stride=2).eval()
    assert stride1.forward_features(x).shape == (1, 512, 4, 2)
    assert stride2.forward_features(x).shape == (1, 512, 2, 1)
    shapes = {k: v.shape for k, v in stride2.state_dict().items()}
    assert {k: v.shape for k, v in stride1.state_dict().items()} == shapes


@pytest.fixture()
def checkpoint(tmp_path):
    """A torchvision-style resnet18 checkpoint (with its 1000-class fc) on disk."""
    torch.manual_seed(1)
    state = ResNet(18, last_stride=2, num_classes=1000).state_dict()
    for tensor in state.values():
        if tensor.is_floating_point():
            tensor.normal_()  # distinguishable from any fresh init
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    return path, state


def test_round_trip_load_ignores_fc(checkpoint):
    path, state = checkpoint
    model = build_model(tiny_model_config(), num_classes=3)
    load_backbone_weights(model, path)
    loaded = model.appearance.backbone.state_dict()
    assert not any(k.startswith("fc.") for k in loaded)
    for key, tensor in loaded.items():
        assert torch.equal(tensor, state[key]), key


def test_build_model_loads_configured_weights(checkpoint):
    path, state = checkpoint
    model = build_model(tiny_model_config(backbone_weights=str(path)), num_classes=3)
    assert torch.equal(model.appearance.backbone.conv1.weight, state["conv1.weight"])


def test_old_checkpoints_without_batch_counters_load(checkpoint, tmp_path):
    _, state = checkpoint
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    model = build_model(tiny_model_config(), num_classes=0)
    load_backbone_weights(model, tmp_path / "old.pth")
    assert torch.equal(
        model.appearance.backbone.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"]
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s.__setitem__("layer1.0.conv1.weights", s.pop("layer1.0.conv1.weight")),
            "'layer1.0.conv1.weights'",
        ),
        (lambda s: s.pop("layer3.1.bn1.running_mean"), "missing key 'layer3.1.bn1.running_mean'"),
        (
            lambda s: s.__setitem__("layer2.0.conv2.weight", torch.zeros(128, 128, 1, 1)),
            "'layer2.0.conv2.weight'",
        ),
    ],
    ids=["renamed", "missing", "misshaped"],
)
def test_a_bad_checkpoint_names_the_first_bad_key(checkpoint, tmp_path, edit, message):
    _, state = checkpoint
    state = dict(state)
    edit(state)
    torch.save(state, tmp_path / "bad.pth")
    model = build_model(tiny_model_config(), num_classes=0)
    before = model.appearance.backbone.conv1.weight.clone()
    with pytest.raises(ValueError, match=message):
        load_backbone_weights(model, tmp_path / "bad.pth")
    assert torch.equal(model.appearance.backbone.conv1.weight, before)  # nothing half-loaded


def test_a_resnet18_checkpoint_does_not_fit_resnet34(checkpoint):
    path, _ = checkpoint
    model = build_model(tiny_model_config(backbone_depth=34), num_classes=0)
    with pytest.raises(ValueError, match="missing key 'layer1.2.conv1.weight'"):
        load_backbone_weights(model, path)


def test_loading_into_a_model_without_appearance_fails(checkpoint):
    path, _ = checkpoint
    model = build_model(tiny_model_config(use_appearance=False), num_classes=0)
    with pytest.raises(ValueError, match="no appearance branch"):
        load_backbone_weights(model, path)


def test_a_non_checkpoint_file_fails_clearly(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a checkpoint")
    model = build_model(tiny_model_config(), num_classes=0)
    with pytest.raises(ValueError, match="notes.txt"):
        load_backbone_weights(model, path)
    with pytest.raises(ValueError, match="does not exist"):
        load_backbone_weights(model, tmp_path / "absent.pth")


def test_a_checkpoint_holding_code_is_refused_without_torchs_advice(tmp_path):
    # torch's refusal says "re-run with weights_only=False": the one thing a user must not do.
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": RunsCode()}, path)
    model = build_model(tiny_model_config(), num_classes=0)
    with pytest.raises(ValueError) as caught:
        load_backbone_weights(model, path)
    message = str(caught.value)
    assert "refused" in message and "posix.system" in message
    assert "weights_only" not in message and "False" not in message


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))

"""export: the TorchScript (and, when installed, ONNX) embedding model reproduces PyTorch's
embeddings within 1e-4 on a real test clip of the synthetic set; bad runs and formats fail clearly."""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest
import torch
from test_embed_search import cli, make_untrained_run

from pipeline.cache import SkeletonCache
from pipeline.data import load_frames, test_clip_indices
from pipeline.layouts import load_tracklets
from pipeline.runs import RunFolder

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def real_clip(synthetic_root, skeleton_cache):
    """The first evaluation clip of a synthetic tracklet: frames at the tiny run's input size and
    its cached 3D joints, as the model sees them in `embed`."""
    tracklet = load_tracklets("ccvid", synthetic_root)[0][0]
    with SkeletonCache(skeleton_cache) as cache:
        joints = cache.read(tracklet.key, ("joints14",))["joints14"]
    indices = test_clip_indices(len(joints), 8, 4)[0]
    frames = load_frames(tracklet, indices, 64, 32)
    return torch.from_numpy(frames)[None], torch.from_numpy(joints[indices])[None]


def pytorch_embedding(run, *inputs) -> np.ndarray:
    trained = RunFolder(run).load_model()
    with torch.no_grad():
        return trained.model(*inputs).embedding.numpy()


def test_torchscript_export_matches_pytorch_on_a_test_clip(tmp_path, real_clip):
    run = make_untrained_run(tmp_path / "runs" / "tiny")
    result = cli("export", "--run", run, "--format", "torchscript")
    assert result.exit_code == 0, result.output
    exported = run / "export" / "embedding.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(exported))
    with torch.no_grad():
        produced = scripted(*real_clip).numpy()
    expected = pytorch_embedding(run, *real_clip)
    assert produced.shape == (1, 16)
    assert np.abs(expected).max() > 1e-3  # a real, non-degenerate embedding
    assert np.abs(produced - expected).max() <= TOLERANCE
    info = json.loads((run / "export" / "embedding.pt.json").read_text())
    assert info["input_order"] == ["frames", "joints"]
    assert info["frames"]["height"] == 64 and info["frames"]["width"] == 32
    assert info["checked_max_abs_diff"] <= TOLERANCE
    assert sorted(p.name for p in exported.parent.iterdir()) == [
        "embedding.pt",
        "embedding.pt.json",
    ]


def test_a_skeleton_only_run_exports_a_joints_only_model(tmp_path, real_clip):
    run = make_untrained_run(tmp_path / "skeleton", use_appearance=False)
    out = tmp_path / "skeleton.pt"
    result = cli("export", "--run", run, "--out", out)
    assert result.exit_code == 0, result.output
    _, joints = real_clip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        produced = torch.jit.load(str(out))(joints).detach().numpy()
    expected = pytorch_embedding(run, None, joints)
    assert np.abs(produced - expected).max() <= TOLERANCE
    assert json.loads(out.with_name("skeleton.pt.json").read_text())["input_order"] == ["joints"]


@pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None,
    reason="the optional 'onnx' package is not installed (pip install 'asgl-pipeline[onnx]')",
)
def test_onnx_export_matches_pytorch_on_a_test_clip(tmp_path, real_clip):
    run = make_untrained_run(tmp_path / "runs" / "tiny")
    result = cli("export", "--run", run, "--format", "onnx")
    assert result.exit_code == 0, result.output
    exported = run / "export" / "embedding.onnx"
    assert exported.is_file()
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnx is installed but onnxruntime is not: the export could not be run")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    frames, joints = real_clip
    produced = session.run(None, {"frames": frames.numpy(), "joints": joints.numpy()})[0]
    assert np.abs(produced - pytorch_embedding(run, *real_clip)).max() <= TOLERANCE


@pytest.mark.skipif(importlib.util.find_spec("onnx") is not None, reason="onnx is installed here")
def test_onnx_without_the_onnx_package_says_how_to_get_it(tmp_path):
    run = make_untrained_run(tmp_path / "runs" / "tiny")
    result = cli("export", "--run", run, "--format", "onnx")
    assert result.exit_code == 1
    assert "pip install 'asgl-pipeline[onnx]'" in result.output
    assert not (run / "export").exists() or not any((run / "export").iterdir())


def test_export_of_a_run_without_a_checkpoint_is_a_clear_error(tmp_path):
    run = make_untrained_run(tmp_path / "runs" / "tiny")
    (run / "checkpoints" / "last.pt").unlink()
    result = cli("export", "--run", run)
    assert result.exit_code == 1 and "has no checkpoint checkpoints/last.pt" in result.output

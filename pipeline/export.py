"""A trained model's embedding network (frames + joints → embedding) as TorchScript or ONNX, for
use outside this pipeline (`asgl-pipeline export`).

The exported network takes the inputs the model needs, in this order: `frames (B, T, 3, H, W)`
float32 (RGB, resized to the run's input size, ImageNet mean/std) when the appearance branch is on,
and `joints (B, T, 14, C)` float32 (the skeleton cache's `joints14`, or `joints14_2d` for a 2D
run) when a skeleton branch is on; it returns the fused `embedding (B, D)` (not yet L2-normalised:
average a tracklet's clip embeddings, then normalise, as `embed` does). B and T are dynamic.
`describe_export` is the JSON written beside the file: all of that plus the model fingerprint.

Every export is checked before it is kept: the exported model must reproduce PyTorch's embeddings
within `TOLERANCE` on a test clip (ONNX: when onnxruntime is installed; otherwise the description
says it was not checked). The file is written to a temporary name and renamed, so a failed export
leaves nothing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pipeline.cache import POSE_FIELDS
from pipeline.errors import StageError
from pipeline.evaluation import clip_rule
from pipeline.io import atomic_write
from pipeline.runs import TrainedModel

FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}
TOLERANCE = 1e-4


def embedding_network(model):
    """The model as `forward(*inputs) -> embedding`, inputs = those it needs (frames, joints)."""
    from torch import nn

    class EmbeddingNetwork(nn.Module):
        def __init__(self, asgl):
            super().__init__()
            self.asgl = asgl
            self.input_names = tuple(
                name
                for name, needed in (("frames", asgl.needs_frames), ("joints", asgl.needs_joints))
                if needed
            )

        def forward(self, *inputs):
            named = dict(zip(self.input_names, inputs))
            return self.asgl(named.get("frames"), named.get("joints")).embedding

    return EmbeddingNetwork(model).eval()


def example_clip(trained: TrainedModel, batch: int = 1, seed: int = 0) -> tuple:
    """A deterministic test clip (or batch of clips) shaped like the model's inputs."""
    import torch

    model, contract = trained.model, trained.model.input_contract
    generator = torch.Generator().manual_seed(seed)
    t = trained.config.eval.seq_len
    inputs = []
    if model.needs_frames:
        inputs.append(torch.randn(batch, t, 3, *contract.frame_size, generator=generator))
    if model.needs_joints:
        channels = contract.pose_channels
        inputs.append(0.1 * torch.randn(batch, t, 14, channels, generator=generator))
    return tuple(inputs)


def max_difference(reference, produced) -> float:
    import numpy as np

    return float(
        np.max(np.abs(np.asarray(reference, np.float64) - np.asarray(produced, np.float64)))
    )


def export_torchscript(network, inputs: tuple, out: Path, check_inputs: tuple) -> float:
    """Trace, save atomically, reload and compare on `check_inputs`; returns the max |diff|."""
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation and tracer notices
        traced = torch.jit.trace(network, inputs, check_trace=False)
        reference = network(*check_inputs)
        measured: dict[str, float] = {}

        def save_checked(tmp: Path) -> None:
            torch.jit.save(traced, str(tmp))
            loaded = torch.jit.load(str(tmp), map_location="cpu")
            measured["diff"] = max_difference(reference, loaded(*check_inputs))
            _require_close(measured["diff"], "TorchScript")

        atomic_write(out, save_checked)
    return measured["diff"]


def export_onnx(network, inputs: tuple, out: Path, check_inputs: tuple) -> float | None:
    """ONNX via the TorchScript-based exporter (needs the `onnx` package; checked with
    onnxruntime when it is installed). Returns the max |diff|, or None if it was not run."""
    import importlib.util

    import torch

    if importlib.util.find_spec("onnx") is None:
        raise StageError(
            "ONNX export needs the 'onnx' package, which is not installed — "
            "pip install 'asgl-pipeline[onnx]', or export as TorchScript"
        )
    names = network.input_names
    dynamic = {name: {0: "batch", 1: "frames"} for name in names}
    dynamic["embedding"] = {0: "batch"}
    with torch.no_grad():
        reference = network(*check_inputs).numpy()
    measured: dict[str, float | None] = {"diff": None}

    def write_checked(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                network,
                inputs,
                str(tmp),
                dynamo=False,
                input_names=list(names),
                output_names=["embedding"],
                dynamic_axes=dynamic,
                opset_version=17,
            )
        if importlib.util.find_spec("onnxruntime") is not None:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            feeds = {name: tensor.numpy() for name, tensor in zip(names, check_inputs)}
            measured["diff"] = max_difference(reference, session.run(None, feeds)[0])
            _require_close(measured["diff"], "ONNX")

    atomic_write(out, write_checked)
    return measured["diff"]


def _require_close(diff: float, what: str) -> None:
    if not diff <= TOLERANCE:
        raise StageError(
            f"the {what} export differs from the PyTorch model by {diff:.2e} (> {TOLERANCE}) on a "
            "test clip — not written; please report this with the run's config.toml"
        )


def describe_export(
    trained: TrainedModel, network, inputs: tuple, format: str, out: Path, diff: float | None
) -> dict:
    """The JSON written beside an export: inputs, preprocessing, clip rule and fingerprint."""
    cfg, contract = trained.config, trained.model.input_contract
    return {
        "format": format,
        "file": out.name,
        "inputs": {
            name: list(tensor.shape[2:]) for name, tensor in zip(network.input_names, inputs)
        },
        "input_order": list(network.input_names),
        "output": {"embedding": [int(trained.model.embedding_dim)]},
        "dynamic_axes": ["batch", "frames"],
        "frames": {
            "height": contract.frame_size[0],
            "width": contract.frame_size[1],
            "channels": "RGB",
            "scale": 1 / 255,
            "mean": [round(v, 6) for v in contract.mean],
            "std": [round(v, 6) for v in contract.std],
        },
        "joints": {
            "pose": contract.pose,
            "normalisation": cfg.preprocess.normalisation,
            "cache_field": "+".join(POSE_FIELDS[contract.pose]),
        },
        "clip_length": cfg.eval.seq_len,
        "clips": clip_rule(cfg),  # how `embed` cuts a tracklet before averaging
        "run": trained.fingerprint.run,
        "fingerprint": trained.fingerprint.fingerprint,
        "checked_max_abs_diff": diff,
        "tolerance": TOLERANCE,
    }

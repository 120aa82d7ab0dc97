"""`asgl-pipeline export`: a run's embedding model (frames + joints → embedding) as TorchScript or
ONNX, for use outside this pipeline; a JSON description beside it (`pipeline/export.py` says what
the exported network takes and returns, and how each export is checked).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Config
from pipeline.export import (
    FORMATS,
    describe_export,
    embedding_network,
    example_clip,
    export_onnx,
    export_torchscript,
)
from pipeline.io import atomic_write_json
from pipeline.runs import RunFolder
from stages import StageError


@dataclass
class ExportResult:
    out: str
    info: str  # the JSON description beside it
    format: str
    inputs: tuple[str, ...]
    max_abs_diff: float | None  # None when the export could not be run here (no onnxruntime)
    fingerprint: str


def run(
    config: Config,
    *,
    format: str = "torchscript",
    out: str | Path = "",
    log: Callable[[str], None] = print,
) -> ExportResult:
    if format not in FORMATS:
        raise StageError(f"--format {format!r} is unknown — use one of: {', '.join(FORMATS)}")
    folder = RunFolder.resolve(config.train.run, config.paths.runs_dir)
    folder.require_trained()  # before the lock, which would create the runs folder
    with folder.lock("export"):
        return _export(folder, format, out, log)


def _export(
    folder: RunFolder, format: str, out: str | Path, log: Callable[[str], None]
) -> ExportResult:
    trained = folder.load_model("cpu")  # exported on CPU; the file runs anywhere
    out = Path(out) if out else folder.path / "export" / f"embedding{FORMATS[format]}"
    network = embedding_network(trained.model)
    inputs = example_clip(trained, batch=1, seed=0)
    check_inputs = example_clip(trained, batch=2, seed=1)  # another batch size: B stays dynamic
    if format == "torchscript":
        diff = export_torchscript(network, inputs, out, check_inputs)
    else:
        diff = export_onnx(network, inputs, out, check_inputs)

    description = describe_export(trained, network, inputs, format, out, diff)
    info = atomic_write_json(out.with_name(out.name + ".json"), description)
    result = ExportResult(
        out=str(out),
        info=str(info),
        format=format,
        inputs=tuple(network.input_names),
        max_abs_diff=diff,
        fingerprint=trained.fingerprint.fingerprint,
    )
    checked = (
        f"max |Δ| vs PyTorch {diff:.1e} on a test clip"
        if diff is not None
        else "not checked: onnxruntime is not installed"
    )
    log(
        f"export: {format} → {out} (inputs {', '.join(network.input_names)} → embedding "
        f"{trained.model.embedding_dim}-d; {checked}); description → {info}"
    )
    return result

"""Every command-line option that sets a configuration field, declared once with that field (as
pip's `cmdoptions`): a command lists the options it takes, `command_config` turns the given ones
into overrides, and `in_flags` words a library message's `section.field` as the flag that sets it.

An option not given leaves its field to the profile, the TOML file and `--set`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from typing import Any

import click

from pipeline.config import PROFILES, Config, ConfigError, load_config, parse_assignments
from pipeline.pose_error import CONTROL_COMPONENTS
from pipeline.skeleton import NORMALISATION_MODES


class FieldOption(click.Option):
    """A click option that sets the configuration field `field` ("section.name"); `assign` turns
    the given value into field assignments (a switch such as --no-gait sets use_gait False)."""

    def __init__(
        self,
        *args,
        field: str,
        assign: Callable[[Any], dict[str, Any]] | None = None,
        **kwargs,
    ):
        kwargs.setdefault("default", None)  # None = not given: the field keeps its value
        super().__init__(*args, **kwargs)
        self.field = field
        self._assign = assign

    def assignments(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        return self._assign(value) if self._assign else {self.field: value}


def option(*flags: str, field: str, assign=None, **kwargs) -> Callable:
    return click.option(*flags, cls=FieldOption, field=field, assign=assign, **kwargs)


def branch_off(branch: str, help: str) -> Callable:
    """`--no-<branch>`: sets `model.use_<branch>` False when given."""
    field = f"model.use_{branch}"
    return option(
        f"--no-{branch}",
        field=field,
        assign=lambda given: {field: False} if given else {},
        is_flag=True,
        help=help,
    )


def parse_size(text: str) -> dict[str, int]:
    """`--size WxH` → synth.width, synth.height."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not WxH, e.g. 192x256", param_hint="--size"
        ) from None
    return {"synth.width": width, "synth.height": height}


def combine(*decorators: Callable) -> Callable:
    """One decorator applying `decorators` in the order they are listed (as --help shows them)."""

    def apply(command):
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


# ---------------------------------------------------------------- options every command takes
PROFILE = click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    default=None,
    help="Preset on top of the paper's defaults ('demo' = small, CPU-friendly; "
    "'benchmark' = the synthetic set and recipe of `make benchmark`).",
)
CONFIG_FILE = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file with [section] tables overriding the profile.",
)
ASSIGNMENTS = click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="SECTION.FIELD=VALUE",
    help="Override any configuration field, e.g. --set train.epochs=3 (repeatable).",
)
COMMON = combine(PROFILE, CONFIG_FILE, ASSIGNMENTS)

# ---------------------------------------------------------------- data
DATASET = option(
    "--dataset",
    field="data.dataset",
    type=click.Choice(["ccvid", "vccr", "folder", "skeletons", "ucalgary"]),
    help="Dataset layout (default: ccvid, which the synthetic set uses); skeletons and "
    "ucalgary hold 3D joint sequences, no frames (train them with --no-appearance).",
)
ROOT = option(
    "--root",
    field="data.root",
    type=click.Path(file_okay=False),
    help="Dataset root folder (default: cache/synthetic).",
)
MANIFEST = option(
    "--manifest",
    field="data.manifest",
    type=click.Path(dir_okay=False),
    help="CSV manifest path,pid,clothes,camera,split for --dataset folder or skeletons.",
)
CACHE = option(
    "--cache",
    field="data.cache",
    type=click.Path(dir_okay=False),
    help="Skeleton HDF5 cache (default: cache/skeletons/synthetic.h5).",
)
DATA = combine(DATASET, ROOT, MANIFEST, CACHE)

# ---------------------------------------------------------------- synth
SYNTH_OUT = option(
    "--out",
    field="synth.out",
    type=click.Path(file_okay=False),
    help="Output dataset root in the CCVID layout (default: cache/synthetic).",
)
IDENTITIES = option(
    "--identities", field="synth.identities", type=int, help="Number of identities."
)
OUTFITS = option("--outfits", field="synth.outfits", type=int, help="Outfits per identity (≥ 2).")
CAMERAS = option(
    "--cameras",
    field="synth.cameras",
    type=int,
    help="Cameras per site (session3 is a second site, camera ids 13…, as in CCVID).",
)
TRACKLETS_PER_OUTFIT = option(
    "--tracklets-per-outfit",
    field="synth.tracklets_per_outfit",
    type=int,
    help="Tracklets per outfit.",
)
FRAMES = option("--frames", field="synth.frames", type=int, help="Frames per tracklet.")
SIZE = option(
    "--size",
    field="synth.width",
    assign=parse_size,
    metavar="WxH",
    help="Frame size, e.g. 128x256 (the default; at least 96x192).",
)
SEED = option("--seed", field="synth.seed", type=int, help="Random seed (same seed → same bytes).")
OCCLUSION = option(
    "--occlusion",
    field="synth.occlusion",
    type=float,
    help="Probability of an occluder per tracklet.",
)
SYNTH_OVERWRITE = option(
    "--overwrite", field="synth.overwrite", is_flag=True, help="Replace a non-empty output folder."
)

# ---------------------------------------------------------------- preprocess
WORKERS = option(
    "--workers", field="preprocess.workers", type=int, help="Parallel pose workers (0 = all cores)."
)
BACKEND = option(
    "--backend",
    field="preprocess.backend",
    type=click.Choice(["loky", "dask"]),
    help="joblib backend: local processes (loky) or a Dask cluster.",
)
SCHEDULER = option(
    "--scheduler",
    field="preprocess.scheduler",
    help="Dask scheduler address, e.g. tcp://host:8786.",
)
NORMALISATION = option(
    "--normalisation",
    field="preprocess.normalisation",
    type=click.Choice(list(NORMALISATION_MODES)),
    help="Skeleton normalisation: paper Eq. 1, hip-centred metres, or hip-centred and "
    "turned to one facing (the paper's unified view).",
)
POSE_SOURCE = option(
    "--pose-source",
    field="preprocess.pose_source",
    type=click.Choice(["mediapipe", "groundtruth", "skeletons"]),
    help="MediaPipe estimates, or a synthetic set's ground-truth joints (the positive control); "
    "a skeleton dataset's source is always its files (skeletons).",
)
LIMIT = option(
    "--limit", field="preprocess.limit", type=int, help="Only the first N tracklets (quick looks)."
)
PREPROCESS_STRICT = option(
    "--strict", field="preprocess.strict", is_flag=True, help="Exit non-zero if any input failed."
)
PREPROCESS_OVERWRITE = option(
    "--overwrite",
    field="preprocess.overwrite",
    is_flag=True,
    help="Rebuild a stale or existing cache.",
)
VERBOSE = option(
    "--verbose",
    field="preprocess.verbose",
    is_flag=True,
    help="Show MediaPipe / TensorFlow Lite's own log lines (silenced by default).",
)

# ---------------------------------------------------------------- model switches (Tables 3–5)
NO_APPEARANCE = branch_off("appearance", "Drop the appearance branch.")
NO_SHAPE = branch_off("shape", "Drop the shape (GAT) branch.")
NO_GAIT = branch_off("gait", "Drop the gait (ST-GAT) branch.")
GRAPH = option(
    "--graph",
    field="model.graph",
    type=click.Choice(["gat", "gcn"]),
    help="GAT/ST-GAT (paper) or GCN/ST-GCN (Table 4).",
)
POSE = option(
    "--pose",
    field="model.pose",
    type=click.Choice(["3d", "2d", "3d+2d"]),
    help="3D world skeletons (paper) or 2D image skeletons (Table 5).",
)
MODEL_SWITCHES = combine(NO_APPEARANCE, NO_SHAPE, NO_GAIT, GRAPH, POSE)

# ---------------------------------------------------------------- runs and training
RUN = option(
    "--run",
    field="train.run",
    help="Run: a NAME (the folder cache/runs/NAME, or under --set paths.runs_dir=…) or the "
    "PATH of a run folder (anything with a '/').",
)
EPOCHS = option("--epochs", field="train.epochs", type=int, help="Training epochs.")
DEVICE = option("--device", field="train.device", help="auto | cpu | cuda | cuda:N.")
BACKBONE_WEIGHTS = option(
    "--backbone-weights",
    field="model.backbone_weights",
    type=click.Path(dir_okay=False),
    help="torchvision ResNet ImageNet checkpoint file to initialise the backbone.",
)
RESUME = option(
    "--resume", field="train.resume", is_flag=True, help="Continue from the run's last checkpoint."
)

# ---------------------------------------------------------------- reports
RUNS_DIR = option(
    "--runs-dir",
    field="paths.runs_dir",
    type=click.Path(file_okay=False),
    help="Folder of run folders (default: cache/runs).",
)
REPORTS_OUT = option(
    "--out",
    field="paths.reports_dir",
    type=click.Path(file_okay=False),
    help="Report folder (default: reports).",
)

# ---------------------------------------------------------------- pose-error
TRUTH = option(
    "--truth",
    field="pose_error.truth",
    type=click.Path(dir_okay=False),
    help="The same set's ground-truth cache (preprocess --pose-source groundtruth).",
)
CONTROL = option(
    "--control",
    field="pose_error.control",
    help="Also write a control: the truth plus one error component "
    f"({', '.join(CONTROL_COMPONENTS)}).",
)
CONTROL_OUT = option(
    "--out", field="pose_error.out", type=click.Path(dir_okay=False), help="The control cache."
)

# ---------------------------------------------------------------- tracklets
TRACKLETS_OUT = option(
    "--out",
    field="tracklets.out",
    type=click.Path(file_okay=False),
    help="Output folder: tracklet folders + manifest.csv (default: cache/tracklets).",
)
DETECTOR = option(
    "--detector",
    field="tracklets.detector",
    type=click.Choice(["hog", "mediapipe", "onnx"]),
    help="hog: OpenCV's bundled people detector (default); mediapipe: its bundled pose "
    "models (finds ~1 person a frame); onnx: your YOLO-style model.",
)
DETECTOR_MODEL = option(
    "--detector-model",
    field="tracklets.detector_model",
    type=click.Path(dir_okay=False),
    help="YOLO-style ONNX person detector file for --detector onnx.",
)
MIN_FRAMES = option(
    "--min-frames",
    field="tracklets.min_frames",
    type=int,
    help="Drop tracks with fewer detected frames (default 8, one clip).",
)
CAMERA = option(
    "--camera",
    field="tracklets.camera",
    type=int,
    help="Camera id written for every video (default: videos numbered 1, 2, …).",
)
TRACKLETS_STRICT = option(
    "--strict",
    field="tracklets.strict",
    is_flag=True,
    help="Exit non-zero if a video failed or held no person.",
)
TRACKLETS_OVERWRITE = option(
    "--overwrite",
    field="tracklets.overwrite",
    is_flag=True,
    help="Replace an earlier tracklets output in --out.",
)


def command_config(ctx: click.Context):
    """The Config of the command being run: profile → TOML file → --set → its field options."""
    params = ctx.params
    try:
        overrides = parse_assignments(params.get("assignments", ()))
        for param in ctx.command.params:
            if isinstance(param, FieldOption):
                for dotted, value in param.assignments(params.get(param.name)).items():
                    section, name = dotted.split(".")
                    overrides.setdefault(section, {})[name] = value
        return load_config(params.get("profile") or "paper", params.get("config_file"), overrides)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None


FIELD_MENTION = re.compile(r"`([a-z_]+)\.([a-z_0-9]+)`")


def in_flags(message: str, commands: Iterable[click.Command]) -> str:
    """`message` with every configuration field in backticks (`data.root`) worded as the option
    that sets it (--root), or as `field (--set field=…)` where no option does: the library
    speaks of settings, the command line of flags."""
    flags = {
        param.field: param.opts[0]
        for command in commands
        for param in command.params
        if isinstance(param, FieldOption)
    }
    defaults = Config()
    sections = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(Config)}

    def word(match: re.Match) -> str:
        dotted = f"{match.group(1)}.{match.group(2)}"
        section = sections.get(match.group(1))
        if not dataclasses.is_dataclass(section):
            return match.group(0)  # not a configuration field
        if match.group(2) not in {f.name for f in dataclasses.fields(section)}:
            return match.group(0)
        return flags.get(dotted, f"{dotted} (--set {dotted}=…)")

    return FIELD_MENTION.sub(word, message)

"""Typed configuration: the paper's values as defaults, a CPU `demo` profile, TOML files and
command-line overrides.

Precedence (later wins): dataclass defaults (the paper, SPEC §6) → profile → TOML file → `--set
section.field=value` / dedicated CLI options. The resolved configuration is written next to every
output with `save_config`, and read back with `load_config_file`.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.io import atomic_write_text


class ConfigError(ValueError):
    """A configuration value or key that cannot be used; the message says which and why."""


@dataclass
class DataConfig:
    """Where the dataset and its skeleton cache live."""

    dataset: str = "ccvid"  # ccvid | vccr | folder | skeletons | ucalgary (the last two: no frames)
    root: str = "cache/synthetic"
    manifest: str = ""  # CSV manifest for the `folder` adapter (path,pid,clothes,camera,split)
    cache: str = "cache/skeletons/synthetic.h5"
    # Decoded, resized frames kept for training and evaluation (pipeline/data/frames.py): the
    # folder ("" = `<cache stem>.frames/` beside the skeleton cache), and the largest cache
    # written by itself, in GB (0 = never: frames are decoded from their files at every read).
    frame_cache: str = ""
    frame_cache_gb: float = 8.0


@dataclass
class SynthConfig:
    """The embedded synthetic cloth-changing set (SPEC §3.4). The defaults are the demo size:
    3,072 frames, which MediaPipe preprocesses in about a minute on 2 cores."""

    out: str = "cache/synthetic"
    identities: int = 24
    outfits: int = 2
    cameras: int = 4  # per site; session3 is a second site (camera ids 13…, as in CCVID)
    tracklets_per_outfit: int = 2
    frames: int = 32
    width: int = 128
    height: int = 256
    seed: int = 0
    occlusion: float = 0.0  # probability that a tracklet gets an occluder
    overwrite: bool = False
    workers: int = 0  # rendering processes; 0 = number of cores
    check_tracklets: int = 8  # tracklets MediaPipe is run on to measure detection; 0 = skip


@dataclass
class PreprocessConfig:
    """Pose extraction and skeleton normalisation (SPEC §4)."""

    workers: int = 0  # 0 = number of cores
    backend: str = "loky"  # loky | dask
    scheduler: str = ""  # dask scheduler address, e.g. tcp://127.0.0.1:8786
    model_complexity: int = 1  # only 1 is bundled with mediapipe 0.10.21
    normalisation: str = "paper"  # paper | none | unified
    # mediapipe | groundtruth (synthetic sets only) | skeletons (the files of a skeleton dataset,
    # which is its only source: chosen for it whatever this says, unless groundtruth)
    pose_source: str = "mediapipe"
    # Skeleton datasets: "package.module:function" applied to every sequence's hip-centred metric
    # joints before caching (pipeline/transforms.py), with JSON keyword arguments; "" = none.
    joints_transform: str = ""
    transform_args: str = ""
    limit: int = 0  # 0 = all tracklets
    strict: bool = False
    overwrite: bool = False
    verbose: bool = False  # let MediaPipe / TensorFlow Lite print their own log lines (--verbose)


GRAPHS = ("gat", "gcn")  # model.graph: the paper's attention networks, or Table 4's GCNs
POSES = ("3d", "2d", "3d+2d")  # model.pose: world skeletons, Table 5's image skeletons, both


class BranchSwitches:
    """What the branch switches mean, stated once for `ModelConfig` and `Variant` (both have
    use_appearance, use_shape and use_gait)."""

    use_appearance: bool
    use_shape: bool
    use_gait: bool

    @property
    def branches(self) -> tuple[bool, bool, bool]:
        return (self.use_appearance, self.use_shape, self.use_gait)

    @property
    def has_branch(self) -> bool:
        """At least one branch is on (a model needs one)."""
        return any(self.branches)

    @property
    def uses_skeleton(self) -> bool:
        """A skeleton branch (shape or gait) is on: the model reads joints."""
        return self.use_shape or self.use_gait


@dataclass
class ModelConfig(BranchSwitches):
    """The ASGL network (SPEC §5) and the switches behind the ablation tables."""

    backbone_depth: int = 50  # 18 | 34 | 50
    backbone_weights: str = ""  # torchvision ImageNet checkpoint file; empty = random init
    last_stride: int = 1
    refine_widths: tuple[int, ...] = (128, 512, 2048)
    gat_channels: int = 512  # width of every shape-GAT layer (the paper does not give it)
    gat_heads: int = 4
    gat_layers: int = 2
    # Beyond the paper: a graph convolution over the fixed skeleton beside every GAT layer; on by
    # default, chosen on validation (README "Deviations from the paper"; false = the paper's GAT).
    gat_prior: bool = True
    gat_concat_last: bool = False  # last GAT layer: average its heads (GAT paper) or concatenate
    stgat_channels: tuple[int, ...] = (128, 256)
    stgat_heads: int = 4
    hop_distance: int = 3
    # Beyond the paper: a root transform in every STA block (see pipeline/models/stgat.py).
    stgat_root: bool = False
    # Beyond Eq. 5 as written: ST-GCN's partitioned skeleton adjacency beside the attention; on by
    # default, chosen on validation (false = Eq. 5 as written).
    stgat_prior: bool = True
    # Beyond the paper: the attention term scaled by a learnable scalar that starts at 0, so an STA
    # block starts as its ST-GCN prior and adds attention as far as training finds it useful; on
    # by default, chosen on validation (false = attention at full weight from the start). Only
    # with `stgat_prior` (a closed gate alone would leave the block nothing).
    stgat_attention_gate: bool = True
    temporal_kernel: int = 9
    fusion_dim: int = 512
    fusion_refine: bool = False  # the AFM's mutual refinement of the embeddings (paper §3.3)
    # Beyond the paper (0 = off): each branch left out of a training sample's fusion with this
    # probability (models/fusion.py), so the fusion cannot lean on one branch alone.
    branch_dropout: float = 0.0
    dropout: float = 0.0
    use_appearance: bool = True
    use_shape: bool = True
    use_gait: bool = True
    graph: str = "gat"  # gat | gcn
    pose: str = "3d"  # 3d | 2d


# Each branch combination (appearance, shape, gait): its run-folder suffix ("" = the full model)
# and its name in the tables.
_BRANCHES: dict[tuple[bool, bool, bool], tuple[str, str]] = {
    (True, True, True): ("", "appearance + shape + gait"),
    (True, False, False): ("appearance-only", "appearance only"),
    (False, True, True): ("shape-gait", "shape + gait"),
    (True, True, False): ("no-gait", "appearance + shape"),
    (True, False, True): ("no-shape", "appearance + gait"),
    (False, True, False): ("shape-only", "shape only"),
    (False, False, True): ("gait-only", "gait only"),
}


@dataclass(frozen=True)
class Variant(BranchSwitches):
    """The model switches of `ModelConfig` that the ablation tables vary (Tables 3–5): which
    branches are on, which graph network, which pose; names run folders (`ablate`) and places
    runs in the tables (`report`)."""

    use_appearance: bool = True
    use_shape: bool = True
    use_gait: bool = True
    graph: str = "gat"
    pose: str = "3d"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Variant:
        """From metrics.json's `variant` object (or any mapping with the five switches)."""
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values]
        if missing:
            raise ValueError(f"variant lacks {', '.join(missing)}")
        variant = cls(
            use_appearance=bool(values["use_appearance"]),
            use_shape=bool(values["use_shape"]),
            use_gait=bool(values["use_gait"]),
            graph=str(values["graph"]),
            pose=str(values["pose"]),
        )
        if variant.graph not in GRAPHS or variant.pose not in POSES:
            raise ValueError(f"variant has graph={variant.graph!r}, pose={variant.pose!r}")
        return variant

    @classmethod
    def from_model_config(cls, model) -> Variant:
        return cls.from_mapping({f.name: getattr(model, f.name) for f in dataclasses.fields(cls)})

    def apply(self, model):
        """A copy of `model` (a ModelConfig) with these switches set."""
        return dataclasses.replace(model, **dataclasses.asdict(self))

    def canonical(self) -> Variant:
        """Graph and pose only matter when a skeleton branch is on; an appearance-only model is
        the same model whatever they say, so they are reset to the paper's choice."""
        if self.uses_skeleton:
            return self
        return dataclasses.replace(self, graph="gat", pose="3d")

    def suffix(self) -> str:
        """Run-folder suffix: "" for the full model, e.g. "no-gait", "gcn", "appearance-only"."""
        if not self.has_branch:
            raise ValueError("a model needs at least one branch")
        variant = self.canonical()
        parts = [_BRANCHES[variant.branches][0]]
        if variant.graph != "gat":
            parts.append(variant.graph)
        if variant.pose != "3d":
            parts.append(variant.pose)
        return "-".join(part for part in parts if part)

    def run_name(self, base: str) -> str:
        suffix = self.suffix()
        return f"{base}-{suffix}" if suffix else base

    def describe(self) -> str:
        """Human-readable, e.g. "appearance + gait, GAT, 3D pose"."""
        if not self.has_branch:
            return "no branch"
        text = _BRANCHES[self.branches][1]
        if self.uses_skeleton:
            text += f", {self.graph.upper()}, {self.pose.upper()} pose"
        return text

    def cli_flags(self) -> str:
        """The `asgl-pipeline ablate` options that train this variant."""
        flags = [
            flag
            for flag, on in (
                ("--no-appearance", self.use_appearance),
                ("--no-shape", self.use_shape),
                ("--no-gait", self.use_gait),
            )
            if not on
        ]
        variant = self.canonical()
        if variant.graph != "gat":
            flags.append(f"--graph {variant.graph}")
        if variant.pose != "3d":
            flags.append(f"--pose {variant.pose}")
        return " ".join(flags)


@dataclass
class TrainConfig:
    """The training recipe (paper §4.2)."""

    run: str = "asgl"
    epochs: int = 120
    lr: float = 5e-3
    lr_step: int = 40
    lr_gamma: float = 0.1
    weight_decay: float = 0.0  # the paper's Adam gives none (§4.2)
    ce_weight: float = 0.7  # λ1
    triplet_weight: float = 0.3  # λ2
    triplet_margin: float = 0.3
    # λ3, beyond the paper (0 = the paper's loss): a triplet on each branch's projection (losses.py).
    # 0.3 measured on the demo set: the full model no longer falls below shape + gait (README).
    branch_loss: float = 0.3
    # Beyond the paper (0 = off): CAL's clothes-adversarial loss on the fused embedding, weight and
    # first epoch (losses.ClothesAdversary); the classifier of the outfits trains from epoch 0.
    clothes_loss: float = 0.0
    clothes_start: int = 0
    seq_len: int = 8
    sample_stride: int = 4  # 4 for CCVID, 2 for VCCR
    # CAL's dense sampling: training tracklets cut into chunks of this many frames (the last keeps
    # the remainder), each chunk one item for the identity sampler; 0 = whole tracklets.
    sampling_step: int = 64
    height: int = 256
    width: int = 128
    flip: bool = True
    ids_per_batch: int = 8
    clips_per_id: int = 4
    num_workers: int = 2
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # only takes effect on CUDA
    seed: int = 0
    select: str = "last"  # last | val  (model selection never looks at the test set)
    val_ids: int = 0  # identities carved from train for `select = "val"` and the calibration
    # Beyond the paper (off = the paper's learned fusion): "val" scales each branch's fusion weight
    # by the factors that score best on the validation identities after training
    # (pipeline/calibration.py), so the fusion cannot keep a branch that fails on unseen people.
    fusion_calibration: str = "off"
    resume: bool = False


@dataclass
class EvalConfig:
    """Evaluation protocol (SPEC §7)."""

    seq_len: int = 8
    stride: int = 0  # test-clip stride (CAL's rule); 0 = train.sample_stride, as CAL uses one
    batch_size: int = 16
    chunk_size: int = 256  # queries scored at once; bounds memory on large galleries
    bootstrap: int = 1000  # resamples of the query identities behind every 95 % interval
    bootstrap_seed: int = 0  # fixed: the same test set always gets the same intervals
    chance_repeats: int = 100  # random gallery rankings behind each measured chance level
    ranks: tuple[int, ...] = (1, 5, 10, 20)


@dataclass
class TrackletsConfig:
    """`asgl-pipeline tracklets`: people in raw footage → person-crop tracklets (SPEC §11)."""

    out: str = "cache/tracklets"
    detector: str = "hog"  # hog (OpenCV's people detector) | mediapipe | onnx (--detector-model)
    detector_model: str = ""  # YOLO-style ONNX person detector file, for detector = "onnx"
    min_score: float = -1.0  # detection score threshold; < 0 = the detector's own default
    upscale: float = 1.0  # hog: enlarge frames first (people under ~100 px tall)
    min_iou: float = 0.3  # tracker: smallest IoU between a track's prediction and a detection
    max_age: int = 15  # tracker: frames a track outlives its last detection
    min_frames: int = 8  # tracks with fewer detected frames are dropped (one clip = 8)
    margin: float = 0.1  # crop margin around the box, fraction of its size per side
    camera: int = 0  # camera id for every video; 0 = number the videos 1, 2, … in order
    strict: bool = False
    overwrite: bool = False


@dataclass
class PoseErrorConfig:
    """`asgl-pipeline pose-error`: an estimated cache (data.cache) against the same set's
    ground-truth cache, and the noise-model controls (pipeline/pose_error.py)."""

    truth: str = ""  # ground-truth cache of the same set (`preprocess --pose-source groundtruth`)
    window: int = 9  # frames of the moving average that separates drift from jitter
    control: str = ""  # write a control cache: truth + this component (bias, drift, jitter, …)
    out: str = ""  # the control cache's path
    seed: int = 0  # the iid control's noise


@dataclass
class PathsConfig:
    runs_dir: str = "cache/runs"
    reports_dir: str = "reports"


@dataclass
class Config:
    profile: str = "paper"
    data: DataConfig = field(default_factory=DataConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tracklets: TrackletsConfig = field(default_factory=TrackletsConfig)
    pose_error: PoseErrorConfig = field(default_factory=PoseErrorConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


# The lighter model and schedule both CPU profiles (demo, benchmark) share; they differ in
# input size and batch shape only.
_CPU_MODEL: dict[str, Any] = {
    "backbone_depth": 18,
    "refine_widths": (32, 64, 128),
    "gat_channels": 128,
    "gat_heads": 2,
    "stgat_channels": (32, 64),
    "stgat_heads": 2,
    "fusion_dim": 128,
}
# Measured on the default synthetic set (12 training identities, 5 batches of 4×2 clips an
# epoch, ≈ 6 s an epoch on 2 idle cores): lr 1e-3 dropped at epoch 10 beat 3.5e-4 dropped at 8
# (standard mAP 30.9 vs 26.6; CC is near chance either way).
_CPU_TRAIN: dict[str, Any] = {"epochs": 12, "lr": 1e-3, "lr_step": 10, "num_workers": 0}

# Profiles are overrides on top of the paper defaults. `demo` is what the embedded synthetic
# default runs on 2 CPU cores in minutes: lighter backbone, smaller input, fewer epochs.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {},
    "demo": {
        "model": _CPU_MODEL,
        "train": {**_CPU_TRAIN, "height": 128, "width": 64, "ids_per_batch": 4, "clips_per_id": 2},
        "eval": {"batch_size": 8},
    },
    # `make benchmark`: a synthetic set big enough to separate variants (100 training identities;
    # 200 cloth-changing queries over 100 test identities) and a recipe sized so that the full
    # model and every Table 3–5 variant train within 90 minutes on 2 CPU cores. Sized from
    # measured CPU time per training step (batch 32 × 8 frames: 4.4–6.5 s at 64×32 for the six
    # appearance variants, 0.7 s for shape + gait; 128×64 costs ~2×, leaving ~6 epochs); the
    # README has the whole budget. On CUDA, `make benchmark` trains at the paper's 256×128.
    # 20 of the 100 training identities are held out to calibrate the fusion (docs/EXPERIMENTS.md
    # "Fusion calibration"): on the ground-truth control it lifted the full model from 66.5 / 62.0 to
    # 80.0 / 80.0 CC R-1 (seeds 0 / 1), where appearance fails across clothes.
    "benchmark": {
        "synth": {"identities": 200, "frames": 32},
        "model": _CPU_MODEL,
        "train": {
            **_CPU_TRAIN,
            "height": 64,
            "width": 32,
            "ids_per_batch": 8,
            "clips_per_id": 4,
            "val_ids": 20,
            "fusion_calibration": "val",
        },
        "eval": {"batch_size": 16},
    },
    # The skeleton-only protocol on real Kinect walks (`make ucalgary`, README "Real people's
    # skeletons"): no frames, so no appearance branch; the CPU model and schedule. Clip stride 8
    # (8 frames span 2.1 s at 30 fps, two gait cycles) had the best mean validation mAP over 4
    # draws of 4 of the 14 training subjects (81.7 vs 79.1 for stride 4; 6 epochs, 24 epochs,
    # lr 3e-4, batch 8×4 and no flip all within noise): docs/EXPERIMENTS.md, never the test subjects.
    "ucalgary": {
        "data": {
            "dataset": "ucalgary",
            "root": "../shared/data/ucalgary-gait",
            "cache": "cache/skeletons/ucalgary.h5",
        },
        "model": {**_CPU_MODEL, "use_appearance": False},
        "train": {**_CPU_TRAIN, "ids_per_batch": 4, "clips_per_id": 2, "sample_stride": 8},
        "eval": {"batch_size": 16},
    },
}


def eval_stride(config: Config) -> int:
    """The temporal stride of the test clips: `eval.stride`, or the training stride when 0."""
    return int(config.eval.stride or config.train.sample_stride)


def _section_types(section_cls: type) -> dict[str, Any]:
    return typing.get_type_hints(section_cls)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a TOML or command-line value to the field's declared type."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(annotation)
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, item_type, where) for v in value)
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if annotation is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if annotation is float:
            return float(value)
        if annotation is str:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a valid {annotation.__name__}") from None
    return value


def apply_overrides(config: Config, overrides: dict[str, dict[str, Any]], origin: str) -> Config:
    """Return a copy of `config` with `{section: {field: value}}` applied; unknown keys fail."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    updated = {}
    for section_name, values in overrides.items():
        if section_name == "profile":
            updated["profile"] = str(values)
            continue
        if section_name not in sections:
            known = ", ".join(sorted(n for n in sections if n != "profile"))
            raise ConfigError(f"{origin}: unknown section [{section_name}] (known: {known})")
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: [{section_name}] must be a table of settings")
        section = updated.get(section_name, getattr(config, section_name))
        types_ = _section_types(type(section))
        changes = {}
        for key, value in values.items():
            if key not in types_:
                known = ", ".join(types_)
                raise ConfigError(
                    f"{origin}: unknown key '{section_name}.{key}' (known in [{section_name}]: {known})"
                )
            changes[key] = _coerce(value, types_[key], f"{origin}: {section_name}.{key}")
        updated[section_name] = dataclasses.replace(section, **changes)
    return dataclasses.replace(config, **updated)


def parse_assignments(assignments: list[str] | tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Turn `["train.epochs=3", "model.graph=gcn"]` into `{"train": {"epochs": "3"}, ...}`."""
    result: dict[str, dict[str, str]] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not section or not name:
            raise ConfigError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. train.epochs=3")
        result.setdefault(section, {})[name] = value
    return result


def load_config(
    profile: str = "paper",
    toml_path: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Config:
    """Defaults → profile → TOML file → overrides."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile '{profile}' (known: {', '.join(PROFILES)})")
    config = apply_overrides(Config(profile=profile), PROFILES[profile], f"profile '{profile}'")
    if toml_path:
        config = apply_overrides(config, read_toml(toml_path), str(toml_path))
    if overrides:
        config = apply_overrides(config, overrides, "command line")
    return config


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    return parse_toml(path.read_text(), str(path))


def parse_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{origin}: not valid TOML ({error})") from None


def config_to_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)


def to_toml(config: Config) -> str:
    """Serialise the resolved configuration (flat sections of scalars and lists)."""
    lines = [f'profile = "{config.profile}"', ""]
    for section in dataclasses.fields(Config):
        if section.name == "profile":
            continue
        lines.append(f"[{section.name}]")
        for key, value in dataclasses.asdict(getattr(config, section.name)).items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def save_config(config: Config, path: str | Path) -> Path:
    """Write the resolved configuration as TOML (atomically) and return its path."""
    return atomic_write_text(Path(path), to_toml(config))


# Fields added after runs were saved without them, with the value those runs were trained with
# (the default before the field existed or changed), so an older config.toml still means what it
# meant: a missing field takes this value instead of today's default.
SAVED_BEFORE: dict[str, dict[str, Any]] = {
    "model": {"gat_prior": False, "stgat_prior": False, "stgat_attention_gate": False},
}


def parse_config(data: dict[str, Any], origin: str) -> Config:
    """A resolved configuration from its TOML tables, as `save_config` wrote them (no profile
    re-applied); `origin` names where it came from in error messages."""
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    profile = data.pop("profile", "paper")
    for section, fields in SAVED_BEFORE.items():
        if isinstance(data.get(section), dict):
            data[section] = {**fields, **data[section]}
    return apply_overrides(Config(profile=profile), data, origin)


def load_config_file(path: str | Path) -> Config:
    """Read a configuration written by `save_config`."""
    return parse_config(read_toml(path), str(path))

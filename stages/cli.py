"""`asgl-pipeline`: a thin Click layer. Each command resolves a Config and calls a stage's
`run(config)`; no logic lives here beyond mapping options to configuration fields."""

from __future__ import annotations

import functools
import importlib
import sys

import click

from pipeline import __version__
from pipeline.config import PROFILES, ConfigError, load_config, parse_assignments
from pipeline.io import filesystem_error
from stages import StageError

# `--run` means the same in every command (pipeline.runs.RunFolder.resolve).
RUN_HELP = (
    "Run: a NAME (the folder cache/runs/NAME, or under --set paths.runs_dir=…) or the "
    "PATH of a run folder (anything with a '/')."
)


def config_options(command):
    """Options every stage shares: profile, TOML file, and generic SECTION.FIELD=VALUE overrides."""

    @click.option(
        "--profile",
        type=click.Choice(list(PROFILES)),
        default=None,
        help="Preset on top of the paper's defaults ('demo' = small, CPU-friendly; "
        "'benchmark' = the synthetic set and recipe of `make benchmark`).",
    )
    @click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="TOML file with [section] tables overriding the profile.",
    )
    @click.option(
        "--set",
        "assignments",
        multiple=True,
        metavar="SECTION.FIELD=VALUE",
        help="Override any configuration field, e.g. --set train.epochs=3 (repeatable).",
    )
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        return command(*args, **kwargs)

    return wrapper


def resolve_config(profile, config_file, assignments, options: dict[str, tuple[str, object]]):
    """Build the Config; `options` maps a dedicated CLI option to ("section.field", value)."""
    try:
        overrides = parse_assignments(assignments)
        for dotted, value in options.values():
            if value is None:
                continue  # option not given: keep profile / file value
            section, name = dotted.split(".")
            overrides.setdefault(section, {})[name] = value
        return load_config(profile or "paper", config_file, overrides)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None


def run_stage(stage_name: str, config, **options):
    """Import `stages.<name>` and call its run(config, **options); StageError, or a full,
    read-only or forbidden file system → one line, exit 1."""
    stage = importlib.import_module(f"stages.{stage_name}")
    try:
        return stage.run(config, **options)
    except StageError as error:
        click.echo(f"asgl-pipeline {stage_name}: {error}", err=True)
        sys.exit(1)
    except OSError as error:
        translated = filesystem_error(error)
        if translated is None:
            raise
        click.echo(f"asgl-pipeline {stage_name}: {translated}", err=True)
        sys.exit(1)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="asgl-pipeline")
def main():
    """Video-based cloth-changing person re-identification with ASGL
    (appearance + body shape + gait). Stages: synth → preprocess → train → evaluate → report.

    Every command takes --profile (default: paper; the Makefile uses demo), --config FILE.toml and --set SECTION.FIELD=VALUE.
    """


def data_options(command):
    """Dataset location options shared by preprocess, train and ablate."""

    @click.option(
        "--dataset",
        type=click.Choice(["ccvid", "vccr", "folder", "skeletons", "ucalgary"]),
        default=None,
        help="Dataset layout (default: ccvid, which the synthetic set uses); skeletons and "
        "ucalgary hold 3D joint sequences, no frames (train them with --no-appearance).",
    )
    @click.option(
        "--root",
        type=click.Path(file_okay=False),
        default=None,
        help="Dataset root folder (default: cache/synthetic).",
    )
    @click.option(
        "--manifest",
        type=click.Path(dir_okay=False),
        default=None,
        help="CSV manifest path,pid,clothes,camera,split for --dataset folder or skeletons.",
    )
    @click.option(
        "--cache",
        type=click.Path(dir_okay=False),
        default=None,
        help="Skeleton HDF5 cache (default: cache/skeletons/synthetic.h5).",
    )
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        return command(*args, **kwargs)

    return wrapper


def verbose_option(command):
    """For the commands that run MediaPipe: let it print its own log lines."""
    return click.option(
        "--verbose",
        is_flag=True,
        default=None,
        help="Show MediaPipe / TensorFlow Lite's own log lines (silenced by default).",
    )(command)


def _data(dataset, root, manifest, cache):
    return {
        "dataset": ("data.dataset", dataset),
        "root": ("data.root", root),
        "manifest": ("data.manifest", manifest),
        "cache": ("data.cache", cache),
    }


@main.command()
@config_options
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output dataset root in the CCVID layout (default: cache/synthetic).",
)
@click.option("--identities", type=int, default=None, help="Number of identities.")
@click.option("--outfits", type=int, default=None, help="Outfits per identity (≥ 2).")
@click.option(
    "--cameras",
    type=int,
    default=None,
    help="Cameras per site (session3 is a second site, camera ids 13…, as in CCVID).",
)
@click.option("--tracklets-per-outfit", type=int, default=None, help="Tracklets per outfit.")
@click.option("--frames", type=int, default=None, help="Frames per tracklet.")
@click.option(
    "--size",
    default=None,
    metavar="WxH",
    help="Frame size, e.g. 128x256 (the default; at least 96x192).",
)
@click.option("--seed", type=int, default=None, help="Random seed (same seed → same bytes).")
@click.option(
    "--occlusion", type=float, default=None, help="Probability of an occluder per tracklet."
)
@click.option("--overwrite", is_flag=True, default=None, help="Replace a non-empty output folder.")
def synth(
    profile,
    config_file,
    assignments,
    out,
    identities,
    outfits,
    cameras,
    tracklets_per_outfit,
    frames,
    size,
    seed,
    occlusion,
    overwrite,
):
    """Generate the synthetic cloth-changing video set (CCVID layout) with ground-truth joints."""
    width = height = None
    if size is not None:
        try:
            width, height = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise click.BadParameter(
                f"{size!r} is not WxH, e.g. 192x256", param_hint="--size"
            ) from None
    config = resolve_config(
        profile,
        config_file,
        assignments,
        {
            "out": ("synth.out", out),
            "identities": ("synth.identities", identities),
            "outfits": ("synth.outfits", outfits),
            "cameras": ("synth.cameras", cameras),
            "tracklets_per_outfit": ("synth.tracklets_per_outfit", tracklets_per_outfit),
            "frames": ("synth.frames", frames),
            "width": ("synth.width", width),
            "height": ("synth.height", height),
            "seed": ("synth.seed", seed),
            "occlusion": ("synth.occlusion", occlusion),
            "overwrite": ("synth.overwrite", overwrite),
        },
    )
    run_stage("synth", config)


@main.command()
@config_options
@data_options
@click.option("--workers", type=int, default=None, help="Parallel pose workers (0 = all cores).")
@click.option(
    "--backend",
    type=click.Choice(["loky", "dask"]),
    default=None,
    help="joblib backend: local processes (loky) or a Dask cluster.",
)
@click.option("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786.")
@click.option(
    "--normalisation",
    type=click.Choice(["paper", "none", "unified"]),
    default=None,
    help="Skeleton normalisation: paper Eq. 1, hip-centred metres, or hip-centred and "
    "turned to one facing (the paper's unified view).",
)
@click.option(
    "--pose-source",
    type=click.Choice(["mediapipe", "groundtruth", "skeletons"]),
    default=None,
    help="MediaPipe estimates, or a synthetic set's ground-truth joints (the positive control); "
    "a skeleton dataset's source is always its files (skeletons).",
)
@click.option("--limit", type=int, default=None, help="Only the first N tracklets (quick looks).")
@click.option("--strict", is_flag=True, default=None, help="Exit non-zero if any input failed.")
@click.option("--overwrite", is_flag=True, default=None, help="Rebuild a stale or existing cache.")
@verbose_option
def preprocess(
    profile,
    config_file,
    assignments,
    dataset,
    root,
    manifest,
    cache,
    workers,
    backend,
    scheduler,
    normalisation,
    pose_source,
    limit,
    strict,
    overwrite,
    verbose,
):
    """Extract MediaPipe 3D skeletons, map 33 → 14 joints, normalise, write the HDF5 cache."""
    config = resolve_config(
        profile,
        config_file,
        assignments,
        {
            **_data(dataset, root, manifest, cache),
            "workers": ("preprocess.workers", workers),
            "backend": ("preprocess.backend", backend),
            "scheduler": ("preprocess.scheduler", scheduler),
            "normalisation": ("preprocess.normalisation", normalisation),
            "pose_source": ("preprocess.pose_source", pose_source),
            "limit": ("preprocess.limit", limit),
            "strict": ("preprocess.strict", strict),
            "overwrite": ("preprocess.overwrite", overwrite),
            "verbose": ("preprocess.verbose", verbose),
        },
    )
    run_stage("preprocess", config)


def model_switch_options(command):
    """The ablation switches (paper Tables 3–5)."""

    @click.option(
        "--no-appearance", is_flag=True, default=False, help="Drop the appearance branch."
    )
    @click.option("--no-shape", is_flag=True, default=False, help="Drop the shape (GAT) branch.")
    @click.option("--no-gait", is_flag=True, default=False, help="Drop the gait (ST-GAT) branch.")
    @click.option(
        "--graph",
        type=click.Choice(["gat", "gcn"]),
        default=None,
        help="GAT/ST-GAT (paper) or GCN/ST-GCN (Table 4).",
    )
    @click.option(
        "--pose",
        type=click.Choice(["3d", "2d"]),
        default=None,
        help="3D world skeletons (paper) or 2D image skeletons (Table 5).",
    )
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        return command(*args, **kwargs)

    return wrapper


def _switches(no_appearance, no_shape, no_gait, graph, pose):
    return {
        "use_appearance": ("model.use_appearance", False if no_appearance else None),
        "use_shape": ("model.use_shape", False if no_shape else None),
        "use_gait": ("model.use_gait", False if no_gait else None),
        "graph": ("model.graph", graph),
        "pose": ("model.pose", pose),
    }


@main.command()
@config_options
@data_options
@model_switch_options
@click.option("--run", "run_name", default=None, help=RUN_HELP + " Outputs go there.")
@click.option("--epochs", type=int, default=None, help="Training epochs.")
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N.")
@click.option(
    "--backbone-weights",
    type=click.Path(dir_okay=False),
    default=None,
    help="torchvision ResNet ImageNet checkpoint file to initialise the backbone.",
)
@click.option(
    "--resume", is_flag=True, default=None, help="Continue from the run's last checkpoint."
)
def train(
    profile,
    config_file,
    assignments,
    dataset,
    root,
    manifest,
    cache,
    no_appearance,
    no_shape,
    no_gait,
    graph,
    pose,
    run_name,
    epochs,
    device,
    backbone_weights,
    resume,
):
    """Train the fused ASGL model from cached skeletons plus frames, then evaluate it."""
    config = resolve_config(
        profile,
        config_file,
        assignments,
        {
            **_data(dataset, root, manifest, cache),
            **_switches(no_appearance, no_shape, no_gait, graph, pose),
            "run": ("train.run", run_name),
            "epochs": ("train.epochs", epochs),
            "device": ("train.device", device),
            "backbone_weights": ("model.backbone_weights", backbone_weights),
            "resume": ("train.resume", resume),
        },
    )
    run_stage("train", config)


@main.command()
@config_options
@click.option("--run", "run_name", default=None, help=RUN_HELP)
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N.")
def evaluate(profile, config_file, assignments, run_name, device):
    """Evaluate a trained run: Standard / CC / SC, R-1/5/10/20 and mAP (CAL's protocol)."""
    config = resolve_config(
        profile,
        config_file,
        assignments,
        {
            "run": ("train.run", run_name),
            "device": ("train.device", device),
        },
    )
    run_stage("evaluate", config)


@main.command()
@config_options
@click.option(
    "--cache",
    type=click.Path(dir_okay=False),
    default=None,
    help="Skeleton cache (HDF5) to probe (default: data.cache).",
)
def probe(profile, config_file, assignments, cache):
    """No-learning check of identity in a skeleton cache: bone ratios, proportions, cadence by
    nearest neighbour (SPEC §7 protocol), beside the chance level."""
    config = resolve_config(profile, config_file, assignments, {"cache": ("data.cache", cache)})
    run_stage("probe", config)


@main.command("pose-error")
@config_options
@click.option(
    "--cache",
    type=click.Path(dir_okay=False),
    default=None,
    help="Estimated skeleton cache, e.g. MediaPipe's (default: data.cache).",
)
@click.option(
    "--truth",
    type=click.Path(dir_okay=False),
    default=None,
    help="The same set's ground-truth cache (preprocess --pose-source groundtruth).",
)
@click.option(
    "--control",
    default=None,
    help="Also write a control: the truth plus one error component "
    "(bias, drift, jitter, drift+jitter, iid, shrinkage, all).",
)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="The control cache.")
def pose_error(profile, config_file, assignments, cache, truth, control, out):
    """Where pose estimation loses identity: an estimated cache against ground truth (error parts
    per joint, shrinkage and ICC of body and gait quantities, alignment checks)."""
    config = resolve_config(
        profile,
        config_file,
        assignments,
        {
            "cache": ("data.cache", cache),
            "truth": ("pose_error.truth", truth),
            "control": ("pose_error.control", control),
            "out": ("pose_error.out", out),
        },
    )
    run_stage("pose_error", config)


@main.command()
@config_options
@click.argument("first", metavar="RUN_A")
@click.argument("second", metavar="RUN_B")
@click.option(
    "--cue",
    default="bone ratios",
    show_default=True,
    help="The probe cue to pair with when RUN_A or RUN_B is a probe record (probe_*.json).",
)
def compare(profile, config_file, assignments, first, second, cue):
    """Is RUN_A better than RUN_B beyond noise? A 95 % paired bootstrap of A − B over the same
    queries, per setting (R-1, mAP). A run is a NAME under cache/runs or a PATH; either may be a
    probe record (reports/probe_<cache>.json) of the same test set, scored with --cue."""
    config = resolve_config(profile, config_file, assignments, {})
    run_stage("compare", config, first=first, second=second, cue=cue)


@main.command()
@config_options
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of run folders to report on (default: cache/runs).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Report folder (default: reports).",
)
def report(profile, config_file, assignments, runs_dir, out):
    """Write Tables 1–5 (CSV + Markdown) and plots: the paper's rows beside measured ones."""
    config = resolve_config(
        profile,
        config_file,
        assignments,
        {
            "runs_dir": ("paths.runs_dir", runs_dir),
            "out": ("paths.reports_dir", out),
        },
    )
    run_stage("report", config)


@main.command()
@config_options
@data_options
@model_switch_options
@click.option(
    "--all",
    "all_variants",
    is_flag=True,
    default=False,
    help="Train every variant Tables 3–5 need; finished ones are skipped.",
)
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N.")
def ablate(
    profile,
    config_file,
    assignments,
    dataset,
    root,
    manifest,
    cache,
    no_appearance,
    no_shape,
    no_gait,
    graph,
    pose,
    all_variants,
    device,
):
    """Train and evaluate ablation variants (Tables 3–5) with the full model's data and seed."""
    config = resolve_config(
        profile,
        config_file,
        assignments,
        {
            **_data(dataset, root, manifest, cache),
            **_switches(no_appearance, no_shape, no_gait, graph, pose),
            "device": ("train.device", device),
        },
    )
    run_stage("ablate", config, all_variants=all_variants)


@main.command()
@config_options
@click.option("--quick", is_flag=True, default=False, help="Small sizes, for CI and smoke checks.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Where bench.md and bench.csv go (default: reports).",
)
def bench(profile, config_file, assignments, quick, out):
    """Measure throughput side by side and write reports/bench.{md,csv}."""
    config = resolve_config(
        profile,
        config_file,
        assignments,
        {
            "out": ("paths.reports_dir", out),
        },
    )
    run_stage("bench", config, quick=quick)


def run_folder_option(command):
    return click.option("--run", "run_dir", required=True, help=RUN_HELP)(command)


@main.command()
@config_options
@data_options
@run_folder_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Embeddings file (.npz; default: RUN/embeddings/<root name>.npz).",
)
@click.option("--workers", type=int, default=None, help="Parallel pose workers (0 = all cores).")
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N.")
@verbose_option
def embed(
    profile,
    config_file,
    assignments,
    dataset,
    root,
    manifest,
    cache,
    run_dir,
    out,
    workers,
    device,
    verbose,
):
    """Embed every tracklet of a dataset (e.g. your own videos: --dataset folder --root DIR) with
    a trained run; missing skeletons are extracted first (cache beside the output unless --cache)."""
    config = resolve_config(
        profile,
        config_file,
        assignments,
        {
            **_data(dataset, root, manifest, None),
            "workers": ("preprocess.workers", workers),
            "device": ("train.device", device),
            "verbose": ("preprocess.verbose", verbose),
        },
    )
    run_stage("embed", config, run_dir=run_dir, out=out or "", cache=cache or "")


@main.command()
@config_options
@click.option(
    "--gallery",
    type=click.Path(dir_okay=False),
    required=True,
    help="Embeddings file written by `embed`.",
)
@click.option(
    "--query",
    type=click.Path(),
    required=True,
    help="A video file or a folder of frames showing one person.",
)
@click.option("--top", type=int, default=10, show_default=True, help="How many matches to list.")
@click.option(
    "--exclude-same-camera",
    is_flag=True,
    default=False,
    help="Drop gallery tracklets from the query's camera (needs --query-camera).",
)
@click.option("--query-camera", type=int, default=None, help="Camera id of the query footage.")
@click.option(
    "--run",
    "run_dir",
    default=None,
    help=RUN_HELP + " Embeds the query (default: the run recorded in --gallery; must "
    "be the same model).",
)
@click.option(
    "--image",
    type=click.Path(dir_okay=False),
    default=None,
    help="Rank-list PNG (default: <gallery folder>/search/<query name>.png).",
)
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N.")
@verbose_option
def search(
    profile,
    config_file,
    assignments,
    gallery,
    query,
    top,
    exclude_same_camera,
    query_camera,
    run_dir,
    image,
    device,
    verbose,
):
    """Rank the gallery's tracklets for a query video (negative cosine distance): prints a table
    and writes a rank-list image."""
    config = resolve_config(
        profile,
        config_file,
        assignments,
        {
            "device": ("train.device", device),
            "verbose": ("preprocess.verbose", verbose),
        },
    )
    run_stage(
        "search",
        config,
        gallery=gallery,
        query=query,
        top=top,
        exclude_same_camera=exclude_same_camera,
        query_camera=query_camera,
        run_dir=run_dir or "",
        image=image or "",
    )


@main.command()
@config_options
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder: tracklet folders + manifest.csv (default: cache/tracklets).",
)
@click.option(
    "--detector",
    type=click.Choice(["hog", "mediapipe", "onnx"]),
    default=None,
    help="hog: OpenCV's bundled people detector (default); mediapipe: its bundled pose "
    "models (finds ~1 person a frame); onnx: your YOLO-style model.",
)
@click.option(
    "--detector-model",
    type=click.Path(dir_okay=False),
    default=None,
    help="YOLO-style ONNX person detector file for --detector onnx.",
)
@click.option(
    "--min-frames",
    type=int,
    default=None,
    help="Drop tracks with fewer detected frames (default 8, one clip).",
)
@click.option(
    "--camera",
    type=int,
    default=None,
    help="Camera id written for every video (default: videos numbered 1, 2, …).",
)
@click.option(
    "--strict",
    is_flag=True,
    default=None,
    help="Exit non-zero if a video failed or held no person.",
)
@click.option(
    "--overwrite", is_flag=True, default=None, help="Replace an earlier tracklets output in --out."
)
def tracklets(
    profile,
    config_file,
    assignments,
    inputs,
    out,
    detector,
    detector_model,
    min_frames,
    camera,
    strict,
    overwrite,
):
    """Detect and track people in raw videos (or frame folders) and write one folder of person
    crops per track plus a manifest for `embed --dataset folder --root OUT`."""
    config = resolve_config(
        profile,
        config_file,
        assignments,
        {
            "out": ("tracklets.out", out),
            "detector": ("tracklets.detector", detector),
            "detector_model": ("tracklets.detector_model", detector_model),
            "min_frames": ("tracklets.min_frames", min_frames),
            "camera": ("tracklets.camera", camera),
            "strict": ("tracklets.strict", strict),
            "overwrite": ("tracklets.overwrite", overwrite),
        },
    )
    run_stage("tracklets", config, inputs=inputs)


@main.command()
@config_options
@run_folder_option
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["torchscript", "onnx"]),
    default="torchscript",
    show_default=True,
    help="onnx needs the optional extra: pip install 'asgl-pipeline[onnx]'.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Output file (default: RUN/export/embedding.pt or .onnx).",
)
def export(profile, config_file, assignments, run_dir, export_format, out):
    """Export a run's embedding model (frames + joints → embedding), checked against PyTorch
    within 1e-4 on a test clip; a JSON file beside it describes the inputs."""
    config = resolve_config(profile, config_file, assignments, {})
    run_stage("export", config, run_dir=run_dir, format=export_format, out=out or "")


if __name__ == "__main__":
    main()

"""`asgl-pipeline`: a thin Click layer. Each command lists its options (declared once with their
configuration field in `stages/options.py`), resolves a Config from them and calls a stage's
`run(config)`; options that are not configuration (files to read or write for this call) are the
stage's keyword arguments."""

from __future__ import annotations

import importlib
import sys

import click

from pipeline import __version__
from pipeline.config import ConfigError
from pipeline.io import filesystem_error
from stages import StageError
from stages import options as opt

# stages.bench.SECTIONS, spelled here so that --help does not import torch (a test keeps them equal)
BENCH_SECTIONS = ("evaluation", "training", "preprocess", "cuda", "tracklets")


def run_stage(stage_name: str, config, **options):
    """Import `stages.<name>` and call its run(config, **options); StageError, or a full,
    read-only or forbidden file system → one line, exit 1."""
    stage = importlib.import_module(f"stages.{stage_name}")
    try:
        return stage.run(config, **options)
    except StageError as error:
        message = opt.in_flags(str(error), main.commands.values())
        click.echo(f"asgl-pipeline {stage_name}: {message}", err=True)
        sys.exit(1)
    except OSError as error:
        translated = filesystem_error(error)
        if translated is None:
            raise
        click.echo(f"asgl-pipeline {stage_name}: {translated}", err=True)
        sys.exit(1)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None


def config() -> object:
    """The Config of the command being run (see `options.command_config`)."""
    return opt.command_config(click.get_current_context())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="asgl-pipeline")
def main():
    """Video-based cloth-changing person re-identification with ASGL
    (appearance + body shape + gait). Stages: synth → preprocess → train → evaluate → report.

    Every command takes --profile (default: paper; the Makefile uses demo), --config FILE.toml and --set SECTION.FIELD=VALUE.
    """


@main.command()
@opt.COMMON
@opt.combine(opt.SYNTH_OUT, opt.IDENTITIES, opt.OUTFITS, opt.CAMERAS, opt.TRACKLETS_PER_OUTFIT)
@opt.combine(opt.FRAMES, opt.SIZE, opt.SEED, opt.OCCLUSION, opt.SYNTH_OVERWRITE)
def synth(**_):
    """Generate the synthetic cloth-changing video set (CCVID layout) with ground-truth joints."""
    run_stage("synth", config())


@main.command()
@opt.COMMON
@opt.DATA
@opt.combine(opt.WORKERS, opt.BACKEND, opt.SCHEDULER, opt.NORMALISATION, opt.POSE_SOURCE)
@opt.combine(opt.LIMIT, opt.PREPROCESS_STRICT, opt.PREPROCESS_OVERWRITE, opt.VERBOSE)
def preprocess(**_):
    """Extract MediaPipe 3D skeletons, map 33 → 14 joints, normalise, write the HDF5 cache."""
    run_stage("preprocess", config())


@main.command()
@opt.COMMON
@opt.DATA
@opt.MODEL_SWITCHES
@opt.combine(opt.RUN, opt.EPOCHS, opt.DEVICE, opt.BACKBONE_WEIGHTS, opt.RESUME)
def train(**_):
    """Train the fused ASGL model from cached skeletons plus frames, then evaluate it."""
    run_stage("train", config())


@main.command()
@opt.COMMON
@opt.combine(opt.RUN, opt.DEVICE)
def evaluate(**_):
    """Evaluate a trained run: Standard / CC / SC, R-1/5/10/20 and mAP (CAL's protocol)."""
    run_stage("evaluate", config())


@main.command()
@opt.COMMON
@opt.CACHE
def probe(**_):
    """No-learning check of identity in a skeleton cache: bone ratios, proportions, cadence by
    nearest neighbour (SPEC §7 protocol), beside the chance level."""
    run_stage("probe", config())


@main.command("pose-error")
@opt.COMMON
@opt.combine(opt.CACHE, opt.TRUTH, opt.CONTROL, opt.CONTROL_OUT)
def pose_error(**_):
    """Where pose estimation loses identity: an estimated cache against ground truth (error parts
    per joint, shrinkage and ICC of body and gait quantities, alignment checks)."""
    run_stage("pose_error", config())


@main.command()
@opt.COMMON
@click.argument("first", metavar="RUN_A")
@click.argument("second", metavar="RUN_B")
@click.option(
    "--cue",
    default="bone ratios",
    show_default=True,
    help="The probe cue to pair with when RUN_A or RUN_B is a probe record (probe_*.json).",
)
def compare(first, second, cue, **_):
    """Is RUN_A better than RUN_B beyond noise? A 95 % paired bootstrap of A − B over the same
    queries, per setting (R-1, mAP). A run is a NAME under cache/runs or a PATH; either may be a
    probe record (reports/probe_<cache>.json) of the same test set, scored with --cue."""
    run_stage("compare", config(), first=first, second=second, cue=cue)


@main.command()
@opt.COMMON
@opt.combine(opt.RUNS_DIR, opt.REPORTS_OUT)
def report(**_):
    """Write Tables 1–5 (CSV + Markdown) and plots: the paper's rows beside measured ones."""
    run_stage("report", config())


@main.command()
@opt.COMMON
@opt.DATA
@opt.MODEL_SWITCHES
@click.option(
    "--all",
    "all_variants",
    is_flag=True,
    default=False,
    help="Train every variant Tables 3–5 need; finished ones are skipped.",
)
@opt.combine(opt.RUN, opt.DEVICE)
def ablate(all_variants, **_):
    """Train and evaluate ablation variants (Tables 3–5) with the full model's data and seed;
    --run names the full model, each variant's run is NAME-<variant>."""
    run_stage("ablate", config(), all_variants=all_variants)


@main.command()
@opt.COMMON
@click.option("--quick", is_flag=True, default=False, help="Small sizes, for CI and smoke checks.")
@click.option(
    "--section",
    "sections",
    multiple=True,
    type=click.Choice(BENCH_SECTIONS),
    help="Measure only this section (repeatable; default: all).",
)
@opt.REPORTS_OUT
def bench(quick, sections, **_):
    """Measure throughput side by side and write reports/bench.{md,csv}."""
    run_stage("bench", config(), quick=quick, sections=tuple(sections) or None)


@main.command()
@opt.COMMON
@opt.combine(opt.DATASET, opt.ROOT, opt.MANIFEST)
@opt.RUN
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Embeddings file (.npz; default: RUN/embeddings/<root name>.npz).",
)
@click.option(
    "--cache",
    type=click.Path(dir_okay=False),
    default=None,
    help="Skeleton HDF5 cache of this dataset (default: beside --out, <out stem>.skeletons.h5).",
)
@opt.combine(opt.WORKERS, opt.DEVICE, opt.VERBOSE)
def embed(out, cache, **_):
    """Embed every tracklet of a dataset (e.g. your own videos: --dataset folder --root DIR) with
    a trained run; missing skeletons are extracted first (cache beside the output unless --cache)."""
    run_stage("embed", config(), out=out or "", cache=cache or "")


@main.command()
@opt.COMMON
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
@opt.RUN
@click.option(
    "--image",
    type=click.Path(dir_okay=False),
    default=None,
    help="Rank-list PNG (default: <gallery folder>/search/<query name>.png).",
)
@opt.combine(opt.DEVICE, opt.VERBOSE)
def search(gallery, query, top, exclude_same_camera, query_camera, run, image, **_):
    """Rank the gallery's tracklets for a query video (negative cosine distance): prints a table
    and writes a rank-list image. The query is embedded by --run, by default the run recorded in
    --gallery (it must be the model that made the gallery)."""
    run_stage(
        "search",
        config(),
        gallery=gallery,
        query=query,
        top=top,
        exclude_same_camera=exclude_same_camera,
        query_camera=query_camera,
        gallery_run=run is None,
        image=image or "",
    )


@main.command()
@opt.COMMON
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@opt.combine(opt.TRACKLETS_OUT, opt.DETECTOR, opt.DETECTOR_MODEL, opt.MIN_FRAMES, opt.CAMERA)
@opt.combine(opt.TRACKLETS_STRICT, opt.TRACKLETS_OVERWRITE)
def tracklets(inputs, **_):
    """Detect and track people in raw videos (or frame folders) and write one folder of person
    crops per track plus a manifest for `embed --dataset folder --root OUT`."""
    run_stage("tracklets", config(), inputs=inputs)


@main.command()
@opt.COMMON
@opt.RUN
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
def export(export_format, out, **_):
    """Export a run's embedding model (frames + joints → embedding), checked against PyTorch
    within 1e-4 on a test clip; a JSON file beside it describes the inputs."""
    run_stage("export", config(), format=export_format, out=out or "")


if __name__ == "__main__":
    main()

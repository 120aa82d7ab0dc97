"""`asgl-pipeline bench`: what the product exists to do, measured side by side in one run.

Each section measures two or more things in the same process and reports their ratio against
the issue's target; absolute times are reported too but are only context (noisy machines).
Writes `<paths.reports_dir>/bench.csv` (one row per measurement) and `bench.md`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from pipeline import metrics
from pipeline.benchmark import machine_info, peak_python_memory, time_interleaved
from pipeline.cache import ARRAY_FIELDS, SkeletonCache
from pipeline.config import load_config
from pipeline.data import load_splits
from pipeline.data.frames import attach_frame_cache
from pipeline.footage.detect import HogDetector
from pipeline.footage.scoring import score_scene
from pipeline.footage.track import PersonTracker
from pipeline.io import atomic_write_text
from pipeline.layouts import load_tracklets, read_frames
from pipeline.models import build_model, count_parameters
from pipeline.pose import PoseEstimator
from pipeline.synth.crowd import plan_crowd, render_crowd
from pipeline.training import time_training_steps
from stages import preprocess, synth


@dataclass(frozen=True)
class BenchSizes:
    """Problem sizes; `quick` keeps the harness exercised in CI within seconds."""

    eval_queries: int = 2000
    eval_gallery: int = 20000
    eval_repeats: int = 3
    step_repeats: int = 5
    paper_batch: int = (
        2  # clips per step (BatchNorm needs ≥ 2) at the paper's input (8×256×128, ResNet-50)
    )
    preprocess_identities: int = 8  # × 2 outfits × 2 tracklets
    preprocess_frames: int = 24
    crowd_frames: int = 48  # tracklets section: one 640x360 crowd scene of 3 walkers

    @classmethod
    def quick(cls) -> BenchSizes:
        return cls(
            eval_queries=200,
            eval_gallery=2000,
            eval_repeats=1,
            step_repeats=2,
            paper_batch=2,
            preprocess_identities=4,
            preprocess_frames=8,
            crowd_frames=8,
        )


@dataclass
class Measurement:
    section: str
    name: str
    value: float
    unit: str
    note: str = ""


@dataclass
class Target:
    section: str
    name: str
    measured: float | None
    target: str
    met: bool | None  # None: not measured here
    note: str = ""


@dataclass
class BenchResult:
    measurements: list[Measurement] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (section, why)
    machine: dict[str, str] = field(default_factory=dict)
    quick: bool = False
    csv_path: Path | None = None
    md_path: Path | None = None

    def add(self, section, name, value, unit, note=""):
        self.measurements.append(Measurement(section, name, float(value), unit, note))


# --------------------------------------------------------------------------- evaluation


def bench_evaluation(config, sizes: BenchSizes, result: BenchResult) -> None:
    """Vectorised, chunked metrics vs the per-query loop on the same distance matrix."""
    section = "evaluation"
    rng = np.random.default_rng(0)
    nq, ng, dim = sizes.eval_queries, sizes.eval_gallery, 64
    ids = max(10, ng // 40)  # ~40 gallery tracklets per identity, as on large re-ID sets

    def labels(n):
        pids = rng.integers(0, ids, n)
        return metrics.Labels(pids, rng.integers(0, 6, n), pids * 3 + rng.integers(0, 3, n))

    query, gallery = labels(nq), labels(ng)
    # Features that carry identity, so rankings are realistic rather than random.
    centres = rng.normal(size=(ids, dim)).astype(np.float32)
    q_feat = centres[query.pids] + rng.normal(scale=1.5, size=(nq, dim)).astype(np.float32)
    g_feat = centres[gallery.pids] + rng.normal(scale=1.5, size=(ng, dim)).astype(np.float32)
    distances = metrics.cosine_distances(q_feat, g_feat)
    chunk = config.eval.chunk_size

    outputs = {}
    timings = time_interleaved(
        {
            "per-query loop": lambda: outputs.__setitem__(
                "loop", metrics.evaluate_reference(distances, query, gallery)
            ),
            "vectorised": lambda: outputs.__setitem__(
                "fast", metrics.evaluate_distances(distances, query, gallery, chunk_size=chunk)
            ),
        },
        repeats=sizes.eval_repeats,
        warmup=0,
    )
    identical = all(outputs["loop"][s].same_as(outputs["fast"][s]) for s in metrics.SETTINGS)
    size_note = f"{nq} queries × {ng} gallery, 3 settings"
    for name, timing in timings.items():
        result.add(section, f"{name} time", timing.median_s, "s", size_note)
    speedup = timings["per-query loop"].median_s / timings["vectorised"].median_s
    result.add(section, "speed-up vectorised / loop", speedup, "×", size_note)
    result.add(section, "identical numbers", float(identical), "bool", "all settings, CMC and mAP")

    full_matrix_mib = nq * ng * 4 / 2**20
    for chunk_size in sorted({max(1, chunk // 4), chunk}):
        _, peak = peak_python_memory(
            lambda c=chunk_size: metrics.evaluate(q_feat, g_feat, query, gallery, chunk_size=c)
        )
        result.add(
            section,
            f"peak memory, from features, chunk {chunk_size}",
            peak / 2**20,
            "MiB",
            f"the full distance matrix alone would be {full_matrix_mib:.0f} MiB",
        )
    result.targets.append(
        Target(
            section,
            "vectorised speed-up",
            speedup,
            "≥ 10×",
            speedup >= 10 and identical,
            "" if identical else "numbers differ from the loop",
        )
    )


# --------------------------------------------------------------------------- training step


def _step_time(
    model_cfg,
    batch: int,
    seq_len: int,
    size: tuple[int, int],
    repeats: int,
    variants: dict[str, dict],
    device: str = "cpu",
) -> dict[str, float]:
    """Median forward+backward time per step for each model variant, interleaved. On CUDA the
    step runs under AMP (as training does) and is synchronised before the clock stops."""
    torch.manual_seed(0)
    frames = torch.randn(batch, seq_len, 3, *size, device=device)
    joints = torch.randn(batch, seq_len, 14, 3, device=device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    cuda = device.startswith("cuda")
    steps = {}
    for name, switches in variants.items():
        model = build_model(dataclasses.replace(model_cfg, **switches), num_classes=8)
        model = model.to(device).train()
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler("cuda", enabled=cuda)

        def step(model=model, optimiser=optimiser, scaler=scaler):
            optimiser.zero_grad(set_to_none=True)
            with torch.autocast("cuda", enabled=cuda):
                out = model(
                    frames if model.needs_frames else None, joints if model.needs_joints else None
                )
                loss = torch.nn.functional.cross_entropy(out.logits.float(), labels)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            if cuda:
                torch.cuda.synchronize()

        steps[name] = step
    timings = time_interleaved(steps, repeats=repeats, warmup=1)
    return {name: t.median_s for name, t in timings.items()}


def bench_training(config, sizes: BenchSizes, result: BenchResult) -> None:
    """Forward+backward per step: appearance-only vs full ASGL, at the paper's input and demo's."""
    section = "training step (cpu)"
    variants = {
        "appearance only": {"use_shape": False, "use_gait": False},
        "full ASGL": {},
        "gcn variant": {"graph": "gcn"},
    }
    profiles = {
        "paper": (load_config("paper"), sizes.paper_batch),
        "demo": (load_config("demo"), 4),
    }
    for profile, (cfg, batch) in profiles.items():
        size = (cfg.train.height, cfg.train.width)
        depth = cfg.model.backbone_depth
        note = f"ResNet-{depth}, {batch}×{cfg.train.seq_len}×{size[0]}×{size[1]}"
        times = _step_time(cfg.model, batch, cfg.train.seq_len, size, sizes.step_repeats, variants)
        for name, seconds in times.items():
            result.add(section, f"{profile}: {name} s/step", seconds, "s", note)
            params = count_parameters(
                build_model(dataclasses.replace(cfg.model, **variants[name]), 8)
            )
            result.add(
                section,
                f"{profile}: {name} parameters",
                params["total"],
                "count",
                ", ".join(f"{k} {v:,}" for k, v in params.items() if k != "total" and v),
            )
        ratio = times["full ASGL"] / times["appearance only"]
        result.add(section, f"{profile}: full / appearance-only", ratio, "×", note)
        if profile == "paper":
            result.targets.append(
                Target(
                    section,
                    "full / appearance-only step (paper input)",
                    ratio,
                    "≤ 1.25×",
                    ratio <= 1.25,
                )
            )


# --------------------------------------------------------------------------- preprocess


def _synthetic_frames(config, sizes: BenchSizes, root: Path):
    cfg = dataclasses.replace(
        config.synth,
        out=str(root),
        identities=sizes.preprocess_identities,
        outfits=2,
        tracklets_per_outfit=2,
        frames=sizes.preprocess_frames,
        overwrite=True,
        check_tracklets=0,
    )
    synth.run(dataclasses.replace(config, synth=cfg))


BARE = "bare MediaPipe loop (1 process, frames pre-decoded)"


def _preprocess_runs(config, root: Path, workdir: Path, frames: list) -> dict:
    """The bare loop and the stage at 1 and all-core workers, each a callable to time."""

    def bare_loop():
        with PoseEstimator() as estimator:
            for clip in frames:
                estimator.reset()
                for frame in clip:
                    estimator.process_frame(frame)

    def stage(count: int):
        data = dataclasses.replace(
            config.data,
            dataset="ccvid",
            root=str(root),
            manifest="",
            cache=str(workdir / f"cache-{count}.h5"),
        )
        pre = dataclasses.replace(
            config.preprocess, workers=count, limit=0, overwrite=True, strict=False, backend="loky"
        )
        preprocess.run(dataclasses.replace(config, data=data, preprocess=pre), log=lambda _m: None)

    cores = os.cpu_count() or 1
    return {
        BARE: bare_loop,
        "stage, 1 worker": lambda: stage(1),
        f"stage, {cores} workers": lambda: stage(cores),
    }


def bench_preprocess(config, sizes: BenchSizes, result: BenchResult) -> None:
    """Bare MediaPipe loop over decoded frames vs the preprocess stage with 1 and N workers.
    A first round (not timed into the ratios) imports MediaPipe and starts the worker pool; its
    time beside the warm runs' is the start-up a preprocess run pays once, reported apart,
    since on the bench's 768 frames it would otherwise be a tenth of the 2-worker time."""
    workdir = Path(tempfile.mkdtemp(prefix="asgl-bench-"))
    try:
        root = workdir / "synthetic"
        _synthetic_frames(config, sizes, root)
        tracklets, _ = load_tracklets("ccvid", str(root))
        frames = [read_frames(t) for t in tracklets]
        total = sum(len(f) for f in frames)
        cv2.setNumThreads(1)
        runs = _preprocess_runs(config, root, workdir, frames)
        first = {}
        for name, run_once in runs.items():
            started = time.perf_counter()
            run_once()
            first[name] = time.perf_counter() - started
        timings = time_interleaved(runs, repeats=1 if sizes == BenchSizes.quick() else 2, warmup=0)
        note = f"{len(tracklets)} tracklets, {total} frames"
        _report_preprocess(timings, first, total, note, result)
        cache = workdir / "cache-1.h5"
        bench_cache_size(cache, total, note, result)
        bench_loader(config, sizes, result, root, cache)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _report_preprocess(timings, first: dict, total: int, note: str, result: BenchResult) -> None:
    section = "preprocess"
    bare = timings[BARE].median_s
    one = timings["stage, 1 worker"].median_s
    many_name = list(timings)[-1]
    many = timings[many_name].median_s
    for name, timing in timings.items():
        result.add(section, f"{name} frames/s", total / timing.median_s, "frames/s", note)
    overhead, speedup = one / bare - 1, bare / many
    result.add(section, "stage overhead at 1 worker", 100 * overhead, "%", note)
    result.add(section, f"{many_name} / bare loop", speedup, "×", note)
    result.add(
        section,
        f"{many_name}: start-up of a run (first run − warm run)",
        first[many_name] - many,
        "s",
        "worker processes started, MediaPipe imported and built in each; once per preprocess run",
    )
    result.targets.append(
        Target(
            section, "stage overhead at 1 worker (%)", 100 * overhead, "≤ 15 %", overhead <= 0.15
        )
    )
    result.targets.append(
        Target(
            section,
            f"{many_name} vs bare loop",
            speedup,
            "≥ 1.9×",
            speedup >= 1.9,
            f"warm; a run's start-up, {first[many_name] - many:.1f} s, reported apart",
        )
    )


def bench_cache_size(cache: Path, frames: int, note: str, result: BenchResult) -> None:
    """Bytes per frame of the skeleton cache on disk vs its arrays in memory."""
    raw = 0
    with SkeletonCache(cache) as reader:
        for key in reader.keys():
            raw += sum(a.nbytes for a in reader.read(key, fields=ARRAY_FIELDS).values())
    on_disk = cache.stat().st_size
    result.add("cache", "bytes per frame on disk", on_disk / frames, "B", note)
    result.add("cache", "bytes per frame as raw arrays", raw / frames, "B", "all stored fields")
    result.add("cache", "disk / raw", on_disk / raw, "×", "gzip-compressed HDF5 incl. metadata")


def bench_loader(config, sizes: BenchSizes, result: BenchResult, root: Path, cache: Path) -> None:
    """A demo training step fed by the real DataLoader decoding JPEG files, by the DataLoader
    reading the frame cache, and on a batch in memory, round-robin on the same model."""
    demo = load_config("demo")
    cfg = dataclasses.replace(
        demo,
        data=dataclasses.replace(
            demo.data,
            dataset="ccvid",
            root=str(root),
            manifest="",
            cache=str(cache),
            frame_cache=str(cache.parent / "frames"),
        ),
        # P×K must fit the small bench set's training identities.
        train=dataclasses.replace(demo.train, ids_per_batch=2, clips_per_id=2, device="cpu"),
    )
    splits = load_splits(cfg, needs_joints=True, splits=("train",), log=lambda _msg: None)
    started = time.perf_counter()
    cached = attach_frame_cache(cfg, splits, log=lambda _msg: None)
    build_s = time.perf_counter() - started
    times = time_training_steps(cfg, splits, steps=sizes.step_repeats, cached=cached)
    section = "data loader (cpu)"
    note = (
        f"demo profile, batch {cfg.train.ids_per_batch}×{cfg.train.clips_per_id} clips of "
        f"{cfg.train.seq_len}×{cfg.train.height}×{cfg.train.width}, "
        f"{cfg.train.num_workers} loader workers"
    )
    memory, decode = times["in_memory_s_per_step"], times["dataloader_s_per_step"]
    frame_cache = times["frame_cache_s_per_step"]
    frames = sum(len(s.tracklet.frames) for s in splits.train)
    result.add(section, "step on a batch in memory", memory, "s", note)
    result.add(section, "step with the real DataLoader (JPEG decode)", decode, "s", note)
    result.add(section, "step with the DataLoader on the frame cache", frame_cache, "s", note)
    result.add(section, "loader / in memory", decode / memory, "×", note)
    result.add(section, "frame cache / JPEG decode", frame_cache / decode, "×", note)
    result.add(section, "frame cache / in memory", frame_cache / memory, "×", note)
    result.add(
        section,
        "frame cache build per frame",
        1000 * build_s / max(1, frames),
        "ms",
        f"once per set and input size; {frames} frames here",
    )
    result.targets.append(
        Target(
            section,
            "step with loader / in memory",
            decode / memory,
            "≤ 1.1×",
            decode <= 1.1 * memory,
        )
    )
    result.targets.append(
        Target(
            section,
            "step with the frame cache / JPEG decode",
            frame_cache / decode,
            "< 1×",
            frame_cache < decode,
            f"with the cache / in memory: {frame_cache / memory:.3g}×",
        )
    )


def bench_cuda(config, sizes: BenchSizes, result: BenchResult) -> None:
    """Training clips/s and the full / appearance-only ratio on the GPU (AMP), paper input."""
    if not torch.cuda.is_available():
        raise SectionSkipped("no CUDA device on this machine; run `make bench` on a GPU host")
    section = "training step (cuda, AMP)"
    paper = load_config("paper")
    batch = paper.train.ids_per_batch * paper.train.clips_per_id  # the paper's 32 clips
    size = (paper.train.height, paper.train.width)
    variants = {"appearance only": {"use_shape": False, "use_gait": False}, "full ASGL": {}}
    times = _step_time(
        paper.model, batch, paper.train.seq_len, size, sizes.step_repeats, variants, device="cuda"
    )
    note = f"{torch.cuda.get_device_name(0)}, ResNet-50, {batch}×{paper.train.seq_len}×{size[0]}×{size[1]}"
    for name, seconds in times.items():
        result.add(section, f"{name} clips/s", batch / seconds, "clips/s", note)
    ratio = times["full ASGL"] / times["appearance only"]
    result.add(section, "full / appearance-only", ratio, "×", note)
    result.targets.append(
        Target(
            section,
            "full / appearance-only step (paper input, GPU)",
            ratio,
            "≤ 1.25×",
            ratio <= 1.25,
        )
    )


# --------------------------------------------------------------------------- rendering


def _format(value: float, unit: str) -> str:
    if unit == "bool":
        return "yes" if value else "no"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def write_report(result: BenchResult, out_dir: Path) -> None:
    rows = [dataclasses.asdict(m) for m in result.measurements]
    frame = pd.DataFrame(rows, columns=["section", "name", "value", "unit", "note"])
    result.csv_path = atomic_write_text(out_dir / "bench.csv", frame.to_csv(index=False))

    date = dt.date.today().isoformat()
    lines = [
        "# Benchmark",
        "",
        f"Measured {date}{' with --quick (small sizes; not the targets’ sizes)' if result.quick else ''} "
        "by `asgl-pipeline bench`. Ratios are taken side by side in one run; absolute times are "
        "context only (shared, noisy machines).",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in result.machine.items()],
        "",
        "## Targets",
        "",
        "| section | measurement | measured | target | met |",
        "|---|---|---|---|---|",
    ]
    for t in result.targets:
        measured = "not measured" if t.measured is None else f"{t.measured:.3g}"
        met = {True: "yes", False: "**no**", None: "—"}[t.met]
        note = f" — {t.note}" if t.note else ""
        lines.append(f"| {t.section} | {t.name} | {measured} | {t.target} | {met}{note} |")
    lines += [
        "",
        "## Measurements",
        "",
        "| section | measurement | value | unit | note |",
        "|---|---|---|---|---|",
    ]
    for m in result.measurements:
        lines.append(
            f"| {m.section} | {m.name} | {_format(m.value, m.unit)} | {m.unit} | {m.note} |"
        )
    if result.skipped:
        lines += ["", "## Not measured in this run", ""]
        lines += [f"- **{section}**: {why}" for section, why in result.skipped]
    result.md_path = atomic_write_text(out_dir / "bench.md", "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- stage


def bench_tracklets(config, sizes: BenchSizes, result: BenchResult) -> None:
    """Person detection (OpenCV HOG) vs tracking (norfair) per frame on a rendered crowd scene,
    and both together as the tracklets stage runs them; tracking figures as context."""
    section = "tracklets"
    frames, truth = render_crowd(plan_crowd(seed=10, people=3, frames=sizes.crowd_frames))
    detector = HogDetector()
    found = [detector.detect(frame) for frame in frames]

    def track():
        tracker = PersonTracker()
        for detections in found:
            tracker.update(detections)

    timings = time_interleaved(
        {"detect": lambda: [detector.detect(f) for f in frames], "track": track},
        repeats=1 if sizes == BenchSizes.quick() else 3,
        warmup=1,  # norfair's first import is slow
    )
    score = score_scene(frames, truth, detector)
    per_frame = {name: 1000 * t.median_s / len(frames) for name, t in timings.items()}
    note = f"crowd scene seed 10, 3 walkers, {len(frames)} frames of 640x360"
    result.add(section, "HOG detection per frame", per_frame["detect"], "ms", note)
    result.add(section, "norfair tracking per frame", per_frame["track"], "ms", note)
    result.add(
        section,
        "detection + tracking per frame (stage loop)",
        1000 * score.seconds_per_frame,
        "ms",
        note,
    )
    result.add(section, "tracking / detection time", per_frame["track"] / per_frame["detect"], "×")
    result.add(
        section, "MOTA", score.tracking.mota, "", f"{score.tracking.id_switches} ID switches"
    )
    result.targets.append(
        Target(
            section,
            "tracking / detection time",
            per_frame["track"] / per_frame["detect"],
            "≤ 0.1×",
            per_frame["track"] <= 0.1 * per_frame["detect"],
            "the tracker must not be the bottleneck",
        )
    )


SECTIONS = {
    "evaluation": bench_evaluation,
    "training": bench_training,
    "preprocess": bench_preprocess,
    "cuda": bench_cuda,
    "tracklets": bench_tracklets,
}


def run(
    config,
    quick: bool = False,
    sections: tuple[str, ...] | None = None,
    log: Callable[[str], None] = print,
) -> BenchResult:
    sizes = BenchSizes.quick() if quick else BenchSizes()
    result = BenchResult(machine=machine_info(), quick=quick)
    for name, section in SECTIONS.items():
        if sections is not None and name not in sections:
            continue
        start = time.perf_counter()
        try:
            section(config, sizes, result)
        except SectionSkipped as why:
            result.skipped.append((name, str(why)))
        log(f"bench: {name} done in {time.perf_counter() - start:.1f} s")
    write_report(result, Path(config.paths.reports_dir))
    log(f"bench: wrote {result.md_path} and {result.csv_path}")
    return result


class SectionSkipped(Exception):
    """A section that cannot be measured on this machine (e.g. no CUDA device)."""

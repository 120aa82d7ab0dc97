"""Where a training step's time goes, measured so that a loaded machine does not blur it.

    .venv/bin/python tools/profile_step.py --root cache/synthetic-benchmark \
        --cache cache/skeletons/synthetic-benchmark.h5 [--variant appearance] [--profile benchmark]

CPU time (one thread by default) per step of the real training step, round-robin on one model
fed three ways — the DataLoader decoding JPEG files, the DataLoader on the frame cache, one batch
held in memory — then a torch.profiler table (self CPU) of a few steps on the frame cache. CPU
time of single-threaded work hardly depends on what else the machine runs, so these figures can
be taken on a shared machine; wall-time ratios belong to `make bench`. docs/PERFORMANCE.md has
the figures of issue 25.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from pipeline.config import load_config
from pipeline.data import load_splits
from pipeline.data.frames import attach_frame_cache
from pipeline.runtime import Distributed, seed_everything
from pipeline.training import _endless, build_parts, make_loader, train_step


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="benchmark")
    parser.add_argument("--root", required=True)
    parser.add_argument("--cache", required=True, help="the skeleton cache of --root")
    parser.add_argument("--frame-cache", default="", help="frame cache folder (default: beside)")
    parser.add_argument("--variant", choices=("full", "appearance"), default="full")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4)
    return parser.parse_args()


def setup(args):
    data = {"root": args.root, "cache": args.cache, "frame_cache": args.frame_cache}
    overrides = {"data": data, "train": {"device": "cpu"}}
    if args.variant == "appearance":
        overrides["model"] = {"use_shape": False, "use_gait": False}
    config = load_config(args.profile, overrides=overrides)
    splits = load_splits(config, config.model.uses_skeleton, splits=("train",), log=print)
    cached = attach_frame_cache(config, splits, log=print)
    seed_everything(config.train.seed)
    parts = build_parts(config, splits, torch.device("cpu"), False, Distributed())
    parts.model.train()
    sampler, loader = make_loader(config, cached, parts.model.needs_frames, Distributed())
    return parts, _endless(parts.sampler, parts.loader), _endless(sampler, loader)


def main() -> None:
    args = arguments()
    torch.set_num_threads(args.threads)
    parts, decode, cached = setup(args)
    feeds = {"JPEG decode": decode, "frame cache": cached, "in memory": None}
    held = next(decode)
    cpu = dict.fromkeys(feeds, 0.0)
    fetch = dict.fromkeys(feeds, 0.0)
    for repeat in range(args.steps + 1):  # the first round warms up
        for name, feed in feeds.items():
            started = time.process_time()
            batch = held if feed is None else next(feed)
            fetched = time.process_time()
            step(parts, batch)
            if repeat:
                cpu[name] += time.process_time() - started
                fetch[name] += fetched - started
    print(f"{args.variant}, {args.threads} thread(s), CPU-s per step over {args.steps} steps:")
    for name in feeds:
        print(
            f"  {name:12s} {cpu[name] / args.steps:.3f} (fetching the batch {fetch[name] / args.steps:.3f})"
        )
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step(parts, next(cached))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def step(parts, batch) -> None:
    train_step(
        parts.model, batch, parts.optimizer, parts.loss_fn, parts.scaler, torch.device("cpu"), False
    )


if __name__ == "__main__":
    main()

"""Timing and machine-description helpers for the bench stage.

Absolute times on shared machines are noisy, so the bench reports medians over repeats and,
above all, ratios of two things measured side by side in the same process.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from pipeline.pose import mediapipe_version


@dataclass
class Timing:
    median_s: float
    runs: list[float]


def time_interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int = 5, warmup: int = 1
) -> dict[str, Timing]:
    """Time several functions round-robin, so slow drifts of the machine hit all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - start)
    return {name: Timing(statistics.median(r), r) for name, r in runs.items()}


def peak_python_memory(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run `fn` under tracemalloc (which also sees NumPy buffers); return (result, peak bytes)."""
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    cuda = torch.cuda.is_available()
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mediapipe": mediapipe_version(),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu only (no CUDA device)",
    }

"""The bench harness keeps working (speed itself is measured by `make bench`, never asserted)."""

import dataclasses

import pandas as pd

from pipeline.benchmark import Timing, time_interleaved
from pipeline.config import load_config
from stages import bench


def test_time_interleaved_calls_each_function_per_repeat():
    calls = {"a": 0, "b": 0}

    def bump(name):
        calls[name] += 1

    timings = time_interleaved(
        {"a": lambda: bump("a"), "b": lambda: bump("b")}, repeats=3, warmup=1
    )
    assert calls == {"a": 4, "b": 4}
    assert all(isinstance(t, Timing) and len(t.runs) == 3 for t in timings.values())


def test_quick_bench_writes_report_with_targets(tmp_path):
    config = load_config("demo", None, {"paths": {"reports_dir": str(tmp_path)}})
    result = bench.run(config, quick=True, sections=("evaluation", "cuda"))
    table = pd.read_csv(tmp_path / "bench.csv")
    assert set(table.columns) == {"section", "name", "value", "unit", "note"}
    identical = table[table.name == "identical numbers"].value.item()
    assert identical == 1.0  # vectorised metrics agree with the per-query loop
    markdown = (tmp_path / "bench.md").read_text()
    assert "vectorised speed-up" in markdown and "≥ 10×" in markdown
    assert "cores" in markdown and "torch" in markdown
    assert [t.name for t in result.targets] == ["vectorised speed-up"]
    if not bench_has_cuda():
        assert "no CUDA device" in markdown


def bench_has_cuda():
    import torch

    return torch.cuda.is_available()


def test_training_step_timer_times_each_variant_it_builds(monkeypatch):
    """Each variant's step is made slower by a known sleep in its forward: the timer must report
    at least that much for each, and keep the variants apart."""
    import time

    real_build = bench.build_model
    delays = {True: 0.03, False: 0.09}  # by use_gait: appearance only is the faster one here

    def build_slow(model_cfg, num_classes):
        model = real_build(model_cfg, num_classes)
        real_forward, delay = model.forward, delays[model_cfg.use_gait]

        def forward(*args):
            time.sleep(delay)
            return real_forward(*args)

        model.forward = forward
        return model

    monkeypatch.setattr(bench, "build_model", build_slow)  # the name the bench stage calls
    model_cfg = dataclasses.replace(
        load_config("demo").model,
        backbone_depth=18,
        refine_widths=(8, 8),
        stgat_channels=(8, 8),
        fusion_dim=16,
    )
    variants = {"appearance only": {"use_shape": False, "use_gait": False}, "full": {}}
    times = bench._step_time(
        model_cfg, batch=2, seq_len=2, size=(32, 16), repeats=1, variants=variants
    )
    assert set(times) == set(variants)
    assert times["appearance only"] >= 0.09 and times["full"] >= 0.03  # each its own delay


def test_the_cli_offers_every_bench_section_and_runs_only_those_asked_for(tmp_path):
    from click.testing import CliRunner

    from stages.cli import BENCH_SECTIONS, main

    assert BENCH_SECTIONS == tuple(bench.SECTIONS)
    outcome = CliRunner().invoke(
        main, ["bench", "--quick", "--section", "evaluation", "--out", str(tmp_path)]
    )
    assert outcome.exit_code == 0, outcome.output
    sections = set(pd.read_csv(tmp_path / "bench.csv").section)
    assert sections == {"evaluation"}

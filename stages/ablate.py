"""The `ablate` stage: train and evaluate model variants for Tables 3–5 with the full model's data,
profile and seed, each into a run folder named after the variant (`<base>-no-gait`, `<base>-gcn`,
`<base>-2d`, `<base>-appearance-only`, `<base>-shape-gait`, …; `<base>` = `train.run`).

`--all` trains every variant the tables need, the full model included, and skips any whose run
folder already has metrics.json, so an interrupted `--all` picks up where it stopped."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import stages.train  # `stages.train.run` is looked up at call time: tests substitute a fake
from pipeline.config import ConfigError, load_config_file
from pipeline.reporting.variants import FULL, TABLE_VARIANTS, Variant
from pipeline.runs import RunFolder
from stages import StageError

# What must equal the full model's run for a variant to be comparable with it.
SHARED_FIELDS = (
    "profile",
    "data.dataset",
    "data.root",
    "data.manifest",
    "data.cache",
    "train.seed",
    "train.epochs",
    "model.backbone_depth",
    "model.backbone_weights",
)


@dataclass(frozen=True)
class AblationOutcome:
    run: str
    variant: Variant
    status: str  # "trained" | "skipped (finished)"
    folder: Path


def _field(config, dotted: str):
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _check_same_setup(config, base_folder: RunFolder) -> None:
    """Refuse to build variants that would not be comparable with the existing full model."""
    if not base_folder.config_file.is_file():
        return
    try:
        base = load_config_file(base_folder.config_file)
    except ConfigError as error:
        raise StageError(
            f"cannot read the full model's configuration — {error} — fix or remove "
            f"{base_folder.path}"
        ) from None
    differences = [
        f"{name}={_field(base, name)!r} there but {_field(config, name)!r} here"
        for name in SHARED_FIELDS
        if _field(base, name) != _field(config, name)
    ]
    if differences:
        raise StageError(
            f"the full model in {base_folder.path} was trained with a different setup "
            f"({'; '.join(differences)}) — variants must share its data, profile and seed: pass "
            "the same options, or start a new base with --run NAME"
        )


def variant_config(config, variant: Variant, runs_dir: Path):
    """The configuration that trains `variant`: same everything, its switches and run name;
    resumes from the variant's own checkpoint when an earlier attempt left one."""
    name = variant.run_name(config.train.run)
    resume = config.train.resume or RunFolder.resolve(name, runs_dir).is_trained()
    return dataclasses.replace(
        config,
        model=variant.apply(config.model),
        train=dataclasses.replace(config.train, run=name, resume=resume),
    )


def _requested_variants(config, all_variants: bool) -> list[Variant]:
    requested = Variant.from_model_config(config.model)
    if not requested.has_branch:
        raise StageError(
            "all three branches are switched off (--no-appearance --no-shape --no-gait) — at least "
            "one branch must remain; drop one of those options"
        )
    if all_variants:
        if requested.canonical() != FULL:
            raise StageError(
                f"--all trains every Table 3–5 variant itself, but the options also ask for "
                f"'{requested.describe()}' ({requested.cli_flags()}) — drop those options, or "
                "drop --all to train that one variant"
            )
        return list(TABLE_VARIANTS)
    if requested.canonical() == FULL:
        raise StageError(
            "nothing to ablate: no switch given — use --no-appearance, --no-shape, --no-gait, "
            "--graph gcn or --pose 2d for one variant, or --all for every Table 3–5 variant"
        )
    return [requested.canonical()]


def run(
    config, all_variants: bool = False, log: Callable[[str], None] = print
) -> list[AblationOutcome]:
    variants = _requested_variants(config, all_variants)
    runs_dir = Path(config.paths.runs_dir)
    _check_same_setup(config, RunFolder.resolve(config.train.run, runs_dir))
    outcomes = []
    for variant in variants:
        variant_cfg = variant_config(config, variant, runs_dir)
        name = variant_cfg.train.run
        folder = RunFolder.resolve(name, runs_dir)
        if folder.is_evaluated():
            log(
                f"ablate: {name} ({variant.describe()}) already finished — skipped "
                f"(delete {folder.path} to retrain)"
            )
            outcomes.append(AblationOutcome(name, variant, "skipped (finished)", folder.path))
            continue
        log(f"ablate: training {name} ({variant.describe()})")
        stages.train.run(variant_cfg)
        if not folder.is_evaluated():
            raise StageError(
                f"training {name} finished without writing {folder.metrics_file} "
                "— check the train stage's output above"
            )
        outcomes.append(AblationOutcome(name, variant, "trained", folder.path))
    trained = sum(o.status == "trained" for o in outcomes)
    log(
        f"ablate: {trained} trained, {len(outcomes) - trained} already finished; "
        "`asgl-pipeline report` puts them in Tables 3–5"
    )
    return outcomes

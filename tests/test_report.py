"""The report stage: the paper's Tables 1–5 transcribed and laid out, measured rows placed from run
folders (built here, schema-exact), unmeasured cells, idempotence and plots."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from damage import truncate
from matplotlib.image import imread

from pipeline.config import load_config, save_config
from pipeline.reporting import plots
from pipeline.reporting.measured import dataset_label, discover_runs
from pipeline.reporting.orderings import ORDERINGS, check_ordering
from pipeline.reporting.paper_results import PAPER_TABLES
from pipeline.reporting.ranklist import cc_rank_lists
from pipeline.reporting.tables import build_tables, format_value
from pipeline.reporting.variants import (
    APPEARANCE_GAIT,
    APPEARANCE_ONLY,
    APPEARANCE_SHAPE,
    FULL,
    GCN,
    POSE_2D,
    SHAPE_GAIT,
    Variant,
)
from stages import report
from stages.cli import main

PAPER_TEXT = Path("/work/shared/paper/000_156c5462300ff337.txt")
SETTINGS = ("standard", "cc", "sc")


def write_run(
    runs_dir: Path,
    name: str,
    variant: Variant = FULL,
    cc: tuple[float, float] = (40.0, 30.0),
    dataset: str = "ccvid",
    data_root: str = "cache/synthetic",
    cache: str = "cache/skeletons/synthetic.h5",
    date: str = "2026-11-23",
    queries: int = 20,
    with_extras: bool = True,
    half_width: float | None = None,
    chance: float | None = None,
    features: dict | None = None,
) -> Path:
    """A run folder exactly as docs/ARCHITECTURE.md specifies it (numbers chosen by the test):
    `half_width` adds intervals value ± half_width, `chance` a measured chance level, `features`
    the features.npz to write (fake_features() by default, and even without the extras)."""
    folder = runs_dir / name
    folder.mkdir(parents=True)
    settings = {}
    for offset, setting in enumerate(SETTINGS):
        r1, m_ap = cc if setting == "cc" else (60.0 + offset, 50.0 + offset)
        cmc = [min(100.0, r1 + 2.0 * k) for k in range(20)]
        settings[setting] = {
            "R-1": r1,
            "R-5": cmc[4],
            "R-10": cmc[9],
            "R-20": cmc[19],
            "mAP": m_ap,
            "queries": queries,
            "skipped": 0,
            "cmc": cmc,
        }
        if half_width is not None:
            settings[setting]["intervals"] = {
                m: [settings[setting][m] - half_width, settings[setting][m] + half_width]
                for m in ("R-1", "R-5", "R-10", "R-20", "mAP")
            }
        if chance is not None:
            settings[setting]["chance"] = {m: chance for m in ("R-1", "R-5", "R-10", "R-20", "mAP")}
    metrics = {
        "run": name,
        "dataset": dataset,
        "data_root": data_root,
        "profile": "demo",
        "date": date,
        "epochs": 12,
        "backbone_weights": None,
        "variant": dataclasses.asdict(variant),
        "settings": settings,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if features is not None:
        np.savez(folder / "features.npz", **features)
    if not with_extras:
        return folder
    config = load_config("demo")
    config = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, dataset=dataset, root=data_root, cache=cache),
        model=variant.apply(config.model),
        train=dataclasses.replace(config.train, run=name),
    )
    save_config(config, folder / "config.toml")
    rows = [
        {
            "epoch": e,
            "loss": 3.0 / e,
            "ce": 2.0 / e,
            "triplet": 1.0 / e,
            "acc": 10.0 * e,
            "lr": 3.5e-4,
            "clips_per_s": 5.0,
            "seconds": 1.5,
        }
        for e in range(1, 4)
    ]
    with (folder / "train_log.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if features is None:
        np.savez(folder / "features.npz", **fake_features())
    return folder


def fake_features(people: int = 3, noise: float = 0.1, seed: int = 0) -> dict[str, np.ndarray]:
    """`people` identities, 2 outfits, 2 cameras; keys in the CCVID layout of `make_ccvid_root`.
    Each query has one CC match; `noise` (around fixed identity centres) sets how well a run
    separates people."""
    centres = np.random.default_rng(0).normal(size=(people, 8))
    rng = np.random.default_rng(seed)
    arrays: dict[str, list] = {
        f"{split}_{f}": []
        for split in ("query", "gallery")
        for f in ("features", "pids", "cameras", "clothes", "keys")
    }
    for pid in range(people):
        for outfit in range(2):
            for camera in (1, 2):
                split = "query" if camera == 1 and outfit == 0 else "gallery"
                arrays[f"{split}_features"].append(centres[pid] + noise * rng.normal(size=8))
                arrays[f"{split}_pids"].append(f"{pid:03d}")
                arrays[f"{split}_cameras"].append(camera)
                arrays[f"{split}_clothes"].append(f"{pid:03d}/c{outfit}")
                arrays[f"{split}_keys"].append(f"session1/{pid:03d}_{camera}{outfit}")
    return {k: np.asarray(v) for k, v in arrays.items()}


def run_report(tmp_path: Path, runs_dir: Path | None = None):
    config = load_config("demo")
    config = dataclasses.replace(
        config,
        paths=dataclasses.replace(
            config.paths,
            runs_dir=str(runs_dir or tmp_path / "runs"),
            reports_dir=str(tmp_path / "reports"),
        ),
    )
    return report.run(config, log=lambda line: None)


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


# -- the paper's tables ---------------------------------------------------------------------


def paper_rows(path: Path) -> dict[str, dict[str, str]]:
    """The published rows of a written table, by method."""
    return {row["Method"]: row for row in read_csv(path) if row["source"] == "reported in paper"}


def test_table_layouts_are_the_papers(tmp_path):
    tables = {t.number: t for t in build_tables([])}
    assert tables[1].columns == (
        "Method",
        "Method type",
        "Modalities",
        "CC R-1",
        "CC mAP",
        "Standard R-1",
        "Standard mAP",
        "SC R-1",
        "SC mAP",
        "source",
    )
    assert tables[2].columns == (
        "Method",
        "CC R-1",
        "CC mAP",
        "Standard R-1",
        "Standard mAP",
        "source",
    )
    assert tables[3].columns == (
        "Method",
        "VCCR CC R-1",
        "VCCR CC mAP",
        "VCCR Standard R-1",
        "VCCR Standard mAP",
        "CCVID CC R-1",
        "CCVID CC mAP",
        "CCVID Standard R-1",
        "CCVID Standard mAP",
        "source",
    )
    for number in (4, 5):
        assert tables[number].columns == tables[2].columns
    paper_methods = {
        n: [row[0] for row in t.rows if row[-1] == "reported in paper"] for n, t in tables.items()
    }
    assert paper_methods[1] == [
        "PCB (Sun et al., 2018)",
        "AP3D (Gu et al., 2020)",
        "GRL (Liu et al., 2021)",
        "SPS (Shu et al., 2021)",
        "CAL (Gu et al., 2022)",
        "3STA (Han et al., 2023)",
        "ASGL (Ours)",
    ]
    assert paper_methods[2] == [
        "InsightFace (Deng et al., 2020)",
        "ReFace (Arkushin et al., 2022)",
        "CAL (Gu et al., 2022)",
        "DCR-ReID (Cui et al., 2023)",
        "ASGL (Ours)",
    ]
    assert paper_methods[3] == [
        "Texture branch (Appearance)",
        "ASGL branch (Shape and Gait)",
        "Appearance and Shape",
        "Appearance and Gait",
        "Joint (the proposed ASGL)",
    ]
    assert paper_methods[4] == ["GCN & ST-GCN", "GAT & ST-GAT"]
    assert paper_methods[5] == ["ASGL w/ 2D pose", "ASGL w/ 3D pose"]


def test_paper_cells_match_the_paper(tmp_path):
    run_report(tmp_path)
    out = tmp_path / "reports"
    t1 = paper_rows(out / "table1.csv")
    assert [t1["PCB (Sun et al., 2018)"][c] for c in ("CC R-1", "CC mAP", "SC R-1")] == [
        "18.8",
        "15.6",
        "-",
    ]
    assert (t1["CAL (Gu et al., 2022)"]["SC R-1"], t1["CAL (Gu et al., 2022)"]["SC mAP"]) == (
        "79.1",
        "63.8",
    )
    assert t1["3STA (Han et al., 2023)"]["Modalities"] == "RGB + 3D shape"
    assert t1["ASGL (Ours)"]["Standard mAP"] == "65.8" and t1["ASGL (Ours)"]["SC mAP"] == "79.5"
    t2 = paper_rows(out / "table2.csv")
    assert t2["InsightFace (Deng et al., 2020)"]["CC mAP"] == "-"
    assert t2["ReFace (Arkushin et al., 2022)"]["CC R-1"] == "90.5"
    assert t2["DCR-ReID (Cui et al., 2023)"]["Standard mAP"] == "82.7"
    t3 = paper_rows(out / "table3.csv")
    assert t3["ASGL branch (Shape and Gait)"]["CCVID CC R-1"] == "71.3"
    assert t3["Appearance and Gait"]["VCCR Standard mAP"] == "53.1"
    assert t3["Texture branch (Appearance)"]["CCVID Standard mAP"] == "76.9"
    t4 = paper_rows(out / "table4.csv")
    assert [
        t4["GCN & ST-GCN"][c] for c in ("CC R-1", "CC mAP", "Standard R-1", "Standard mAP")
    ] == ["45.2", "38.1", "82.6", "58.1"]
    t5 = paper_rows(out / "table5.csv")
    assert t5["ASGL w/ 2D pose"]["Standard mAP"] == "60.3"


@pytest.mark.skipif(not PAPER_TEXT.is_file(), reason="paper text not on this machine")
def test_every_paper_row_appears_verbatim_in_the_paper_text():
    lines = set(PAPER_TEXT.read_text().splitlines())
    for table in PAPER_TABLES:
        for row in table.rows:
            printed = " ".join([*row.labels, *(format_value(v) for v in row.values)])
            assert printed in lines, (table.number, printed)


# -- measured rows --------------------------------------------------------------------------


def test_no_runs_every_measured_cell_says_not_measured(tmp_path):
    result = run_report(tmp_path)
    out = tmp_path / "reports"
    for number in range(1, 6):
        assert (out / f"table{number}.csv").is_file() and (out / f"table{number}.md").is_file()
        measured = [
            r for r in read_csv(out / f"table{number}.csv") if r["source"] != "reported in paper"
        ]
        assert measured, number
        for row in measured:
            assert row["source"].startswith("not measured")
            assert all(v == "not measured" for k, v in row.items() if "R-1" in k or "mAP" in k)
    t3_sources = [r["source"] for r in read_csv(out / "table3.csv")]
    assert any("ablate --no-shape --no-gait" in s for s in t3_sources)
    readme = (out / "README.md").read_text()
    assert "Nothing measured yet" in readme
    assert readme.count("**not measured**") == len(ORDERINGS)
    assert result.runs == ()


def test_measured_rows_are_placed_by_variant_and_dataset(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "asgl-demo", FULL, cc=(55.0, 45.0))
    write_run(runs, "asgl-demo-no-shape", APPEARANCE_GAIT, cc=(41.0, 33.3))
    write_run(runs, "asgl-demo-gcn", GCN, cc=(50.0, 40.0))
    write_run(
        runs,
        "vccr-full",
        FULL,
        cc=(52.0, 42.0),
        dataset="vccr",
        data_root="/data/VCCR",
        with_extras=False,
    )
    run_report(tmp_path)
    out = tmp_path / "reports"

    t3 = read_csv(out / "table3.csv")
    assert "synthetic CC R-1" in t3[0]  # the synthetic set gets its own labelled columns
    paper_joint = next(
        r for r in t3 if r["Method"].startswith("Joint") and r["source"] == "reported in paper"
    )
    assert (
        paper_joint["synthetic CC R-1"] == "not in paper" and paper_joint["VCCR CC R-1"] == "52.9"
    )
    ag = [
        r for r in t3 if r["Method"] == "Appearance and Gait" and r["source"] != "reported in paper"
    ]
    assert len(ag) == 1
    assert (
        ag[0]["source"]
        == "measured: synthetic / run asgl-demo-no-shape / profile demo / 2026-11-23"
    )
    assert (ag[0]["synthetic CC R-1"], ag[0]["synthetic CC mAP"]) == ("41.0", "33.3")
    assert ag[0]["CCVID CC R-1"] == "not measured" and ag[0]["VCCR CC R-1"] == "not measured"
    joints = [
        r for r in t3 if r["Method"].startswith("Joint") and r["source"].startswith("measured")
    ]
    assert [r["source"].split(" / ")[1] for r in joints] == ["run vccr-full", "run asgl-demo"]
    vccr_joint = joints[0]
    assert vccr_joint["VCCR CC R-1"] == "52.0" and vccr_joint["synthetic CC R-1"] == "not measured"
    appearance = [r for r in t3 if r["Method"].startswith("Texture")]
    assert appearance[-1]["source"].startswith("not measured")

    t1 = read_csv(out / "table1.csv")
    ours = [r for r in t1 if r["Method"] == "ASGL (this pipeline)"]
    assert [r["source"].split(" / ")[0] for r in ours] == ["measured: VCCR", "measured: synthetic"]
    assert ours[0]["CC R-1"] == "52.0" and ours[1]["synthetic SC R-1"] == "62.0"
    t2 = read_csv(out / "table2.csv")  # a VCCR run has no place in the CCVID table
    assert [r["source"] for r in t2 if r["Method"] == "ASGL (this pipeline)"] == [
        "measured: synthetic / run asgl-demo / profile demo / 2026-11-23"
    ]
    t4 = read_csv(out / "table4.csv")
    gcn = [r for r in t4 if r["Method"] == "GCN & ST-GCN" and r["source"].startswith("measured")]
    assert gcn[0]["synthetic CC R-1"] == "50.0"
    t5 = read_csv(out / "table5.csv")
    assert [r["source"] for r in t5 if r["Method"] == "ASGL w/ 2D pose"][-1].startswith(
        "not measured"
    )
    md = (out / "table3.md").read_text()
    assert md.startswith("# Table 3: Ablation study of the ASGL branch on VCCR and CCVID.")
    assert "| Appearance and Gait | not measured |" in md
    readme = (out / "README.md").read_text()
    assert "**synthetic** (adapter `ccvid`, root `cache/synthetic`)" in readme
    assert "ImageNet backbone weights: **not used**" in readme
    assert "| 20 / 20 / 20 | 1, 3, 4, 5 |" in readme  # the VCCR run is not in the CCVID table


def test_dataset_labels_keep_synthetic_out_of_the_real_columns():
    assert dataset_label("ccvid", "cache/synthetic") == "synthetic"
    assert dataset_label("ccvid", "/data/CCVID/") == "CCVID"
    assert dataset_label("vccr", "/data/vccr_release") == "VCCR"
    assert dataset_label("ccvid", "/data/synthetic_ccvid") == "synthetic_ccvid"
    assert dataset_label("folder", "/footage/lobby") == "lobby"


def test_broken_run_folders_are_noted_not_fatal(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "good", FULL)
    (runs / "broken").mkdir()
    (runs / "broken" / "metrics.json").write_text("{not json")
    (runs / "unfinished").mkdir()
    found, notes = discover_runs(runs)
    assert [r.name for r in found] == ["good"]
    assert any("broken" in n and "unreadable" in n for n in notes)
    assert any("unfinished" in n and "no metrics.json" in n for n in notes)


def test_orderings_are_judged_from_paired_bootstraps(tmp_path):
    runs_dir = tmp_path / "runs"
    good, poor = fake_features(80, noise=0.5, seed=1), fake_features(80, noise=3.0, seed=2)
    write_run(runs_dir, "full", FULL, cc=(45.0, 59.3), queries=80, features=good)
    write_run(
        runs_dir,
        "ag",
        APPEARANCE_GAIT,
        cc=(10.0, 20.0),
        queries=80,
        with_extras=False,
        features=poor,
    )
    # Appearance + shape and appearance only: the same features, so no difference at all.
    for name, variant in (("as", APPEARANCE_SHAPE), ("a", APPEARANCE_ONLY)):
        write_run(
            runs_dir, name, variant, cc=(10.0, 20.0), queries=80, with_extras=False, features=poor
        )
    write_run(
        runs_dir,
        "2d",
        POSE_2D,
        cc=(100.0, 100.0),
        with_extras=False,
        features=fake_features(80, noise=0.1, seed=3),
    )
    runs, _ = discover_runs(runs_dir)
    joint, shape, gat, pose = (check_ordering(o, runs) for o in ORDERINGS)
    assert "**holds**" in joint and "R-1 45.0 vs 10.0, Δ +" in joint and "paired bootstrap" in joint
    assert "**within noise**" in shape and "Δ +0.0 [+0.0, +0.0]" in shape
    assert "does not separate the two models" in shape
    assert "**not measured**" in gat and "ablate --graph gcn" in gat
    assert "**reversed**" in pose and "Likely cause (not verified)" in pose


def set_skeletons_and_selection(folder: Path, pose_source: str, rule: str = "last") -> None:
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["skeletons"] = {"pose_source": pose_source, "normalisation": "paper"}
    metrics["selection"] = {"rule": rule, "checkpoint": "best.pt", "epoch": 3}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_verdicts_speak_for_paper_setup_runs_and_other_rows_say_what_they_are(tmp_path):
    runs_dir = tmp_path / "runs"
    good, poor = fake_features(80, noise=0.5, seed=1), fake_features(80, noise=3.0, seed=2)
    # Newer (and later by name) ground-truth and validation-split runs must not stand for the
    # variant: the paper trains on MediaPipe skeletons with every training identity.
    for name, variant, features, pose, rule, date in (
        ("full", FULL, poor, "mediapipe", "last", "2026-11-23"),
        ("full-gt", FULL, good, "groundtruth", "last", "2026-11-24"),
        ("ag", APPEARANCE_GAIT, good, "mediapipe", "last", "2026-11-23"),
        ("ag-val", APPEARANCE_GAIT, poor, "mediapipe", "val", "2026-11-24"),
    ):
        folder = write_run(
            runs_dir, name, variant, queries=80, date=date, with_extras=False, features=features
        )
        set_skeletons_and_selection(folder, pose, rule)
    runs, _ = discover_runs(runs_dir)
    joint = check_ordering(ORDERINGS[0], runs)
    assert "runs `full` vs `ag`" in joint and "**reversed**" in joint
    run_report(tmp_path, runs_dir)
    sources = [r["source"] for r in read_csv(tmp_path / "reports" / "table3.csv")]
    assert (
        "measured: synthetic / run full-gt / profile demo / 2026-11-24 / groundtruth skeletons"
        in sources
    )
    assert any(
        s.endswith(
            "run ag-val / profile demo / 2026-11-24 / validation identities held out of training"
        )
        for s in sources
    )
    assert "measured: synthetic / run full / profile demo / 2026-11-23" in sources
    readme = (tmp_path / "reports" / "README.md").read_text()
    verdicts = readme.split("## Scientific check")[1].split("\n## ")[0]
    groups = verdicts.split("Measured on **synthetic**, profile **demo**")[1:]
    (groundtruth,) = [
        g for g in groups if g.startswith(", **groundtruth skeletons** (the positive")
    ]
    (mediapipe,) = [g for g in groups if g.startswith(":")]
    assert "runs `full` vs `ag`" in mediapipe and "full-gt" not in mediapipe
    assert "**not measured** — no run for Appearance and Gait" in groundtruth


def test_orderings_without_paired_queries_are_not_compared(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, "full", FULL, features=fake_features(10))
    write_run(runs_dir, "ag", APPEARANCE_GAIT, with_extras=False)  # no features.npz
    write_run(runs_dir, "as", APPEARANCE_SHAPE, with_extras=False, features=fake_features(12))
    write_run(runs_dir, "a", APPEARANCE_ONLY, with_extras=False, features=fake_features(10))
    runs, _ = discover_runs(runs_dir)
    joint, shape, _gat, _pose = (check_ordering(o, runs) for o in ORDERINGS)
    assert "**not compared**" in joint and "`ag` has no usable features.npz" in joint
    assert "**not compared**" in shape and "not scored on one test set" in shape


def test_chance_level_is_stated_and_near_chance_runs_are_flagged(tmp_path):
    write_run(tmp_path / "runs", "weak", FULL, cc=(20.0, 15.0), half_width=8.0, chance=14.3)
    run_report(tmp_path)
    readme = (tmp_path / "reports" / "README.md").read_text()
    assert "A random ranking scores CC R-1 ≈ 14.3 % and CC mAP ≈ 14.3 %" in readme
    assert "**Every run here has the chance level inside its CC 95 % intervals**" in readme
    assert "**This test set is too small to compare variants** (20 CC queries" in readme
    assert "`make benchmark`" in readme
    table3 = (tmp_path / "reports" / "table3.md").read_text()
    assert "| chance level (random ranking) |" in table3 and "14.3" in table3
    assert "20.0 [12.0, 28.0]" in table3  # a measured cell with its interval
    write_run(
        tmp_path / "runs",
        "strong",
        FULL,
        cc=(55.0, 45.0),
        queries=20,
        date="2026-11-24",
        half_width=8.0,
        chance=14.3,
    )
    run_report(tmp_path)
    readme = (tmp_path / "reports" / "README.md").read_text()
    assert "≈ 14.3 %" in readme and "Every run here" not in readme
    assert (
        "Clear of chance in CC (the whole 95 % interval above it): `strong` (R-1 55.0 [47.0, "
        "63.0], mAP 45.0 [37.0, 53.0])." in readme
    )


# -- rank lists, plots, idempotence ---------------------------------------------------------


def test_cc_rank_lists_remove_same_camera_and_same_clothes_matches():
    features = fake_features()
    ranked = cc_rank_lists(features, num_queries=3, top_k=10)
    assert len(ranked) == 3
    g_index = {k: i for i, k in enumerate(features["gallery_keys"])}
    q_index = {k: i for i, k in enumerate(features["query_keys"])}
    for query in ranked:
        q = q_index[query.query_key]
        for key, correct in zip(query.gallery_keys, query.correct, strict=True):
            g = g_index[key]
            same_pid = features["gallery_pids"][g] == features["query_pids"][q]
            assert correct == same_pid
            if same_pid:  # a kept match changed clothes and camera
                assert features["gallery_cameras"][g] != features["query_cameras"][q]
                assert features["gallery_clothes"][g] != features["query_clothes"][q]
        assert query.correct[0]  # well-separated fake features: the right person ranks first


def make_ccvid_root(root: Path) -> None:
    """Tiny frames in the CCVID layout for the keys of `fake_features`."""
    features = fake_features()
    lines = {"train": [], "query": [], "gallery": []}
    for split in ("query", "gallery"):
        for key, pid, clothes in zip(
            features[f"{split}_keys"],
            features[f"{split}_pids"],
            features[f"{split}_clothes"],
            strict=True,
        ):
            folder = root / key
            folder.mkdir(parents=True)
            for t in range(3):
                frame = np.full((32, 16, 3), (40 * int(pid) + 20 * t) % 255, dtype=np.uint8)
                cv2.imwrite(str(folder / f"{t:05d}.png"), frame)
            lines[split].append(f"{key} {pid} {clothes.split('/')[1]}")
    for split, entries in lines.items():
        (root / f"{split}.txt").write_text("\n".join(entries) + "\n")


def make_skeleton_cache(path: Path, keys) -> None:
    from pipeline.cache import CacheWriter

    with CacheWriter(path, {"schema_version": 1, "fingerprint": "test"}) as writer:
        for key in keys:
            image33 = np.tile(np.linspace(0.2, 0.8, 33, dtype=np.float32)[:, None], (3, 1, 3))
            arrays = {
                "world33": np.zeros((3, 33, 3), np.float32),
                "image33": image33,
                "visibility": np.ones((3, 33), np.float32),
                "present": np.ones(3, bool),
                "joints14": np.zeros((3, 14, 3), np.float32),
                "joints14_2d": np.zeros((3, 14, 2), np.float32),
            }
            writer.write(key, arrays, {"frame_size": (32, 16)})


def test_plots_are_written_and_reports_are_byte_identical_twice(tmp_path):
    pytest.importorskip("pipeline.layouts")
    pytest.importorskip("pipeline.cache")
    root, cache = tmp_path / "synthetic", tmp_path / "synthetic.h5"
    make_ccvid_root(root)
    make_skeleton_cache(cache, list(fake_features()["query_keys"]))
    runs = tmp_path / "runs"
    write_run(runs, "asgl-demo", FULL, data_root=str(root), cache=str(cache))
    write_run(runs, "asgl-demo-no-gait", APPEARANCE_SHAPE, data_root=str(root), cache=str(cache))

    run_report(tmp_path)
    out = tmp_path / "reports"
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots == [
        "ablation_table3_synthetic_demo.png",  # two Table 3 variants; Tables 4 and 5 have one
        "cmc_asgl-demo-no-gait.png",
        "cmc_asgl-demo.png",
        "ranklist_asgl-demo-no-gait.png",
        "ranklist_asgl-demo.png",
        "skeletons_synthetic.png",
        "training_asgl-demo-no-gait.png",
        "training_asgl-demo.png",
    ]
    for name in plots:  # decodable images with content (what they draw: tests/test_plots.py)
        image = imread(out / "plots" / name)
        assert image.ndim == 3 and min(image.shape[:2]) >= 100 and image[..., :3].std() > 0.05
    readme = (out / "README.md").read_text()
    assert (
        "(plots/ranklist_asgl-demo.png)" in readme and "(plots/skeletons_synthetic.png)" in readme
    )
    assert "Table 3 variants, synthetic / profile demo: [bars with intervals and chance]" in readme
    assert "Table 4 plot for synthetic / profile demo: fewer than two of its variants" in readme

    first = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    run_report(tmp_path)
    second = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_missing_frames_skip_pictures_with_a_note_but_write_tables(tmp_path):
    runs = tmp_path / "runs"
    write_run(
        runs, "asgl-demo", FULL, data_root=str(tmp_path / "absent"), cache=str(tmp_path / "no.h5")
    )
    stale = tmp_path / "reports" / "plots" / "cmc_deleted-run.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    run_report(tmp_path)
    out = tmp_path / "reports"
    assert all((out / f"table{n}.csv").is_file() for n in range(1, 6))
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "cmc_asgl-demo.png",
        "training_asgl-demo.png",
    ]
    readme = (out / "README.md").read_text()
    assert "rank-list grid skipped" in readme and "skeleton overlay skipped" in readme


def test_report_cli(tmp_path):
    write_run(tmp_path / "runs", "asgl-demo", FULL, with_extras=False)
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--profile",
            "demo",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--out",
            str(tmp_path / "rep"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "6 tables" in result.output
    assert (tmp_path / "rep" / "table5.md").is_file()


def test_a_damaged_features_file_is_a_note_not_a_traceback(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "asgl-demo", FULL)
    truncate(runs / "asgl-demo" / "features.npz")  # BadZipFile used to escape the report
    run_report(tmp_path)
    readme = (tmp_path / "reports" / "README.md").read_text()
    assert "features.npz unusable (it is damaged or not a NumPy .npz file" in readme


def test_a_report_that_fails_half_way_leaves_the_previous_one(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    write_run(runs, "asgl-demo", FULL)
    run_report(tmp_path)
    out = tmp_path / "reports"
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    write_run(runs, "asgl-demo-no-gait", APPEARANCE_SHAPE)

    def broken(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(plots, "training_plot", broken)  # after the tables and the CMC plots
    with pytest.raises(RuntimeError, match="plotting failed"):
        run_report(tmp_path)
    after = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after == before  # not 5 new tables beside an old README
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports", "runs"]  # no staging left


def test_pose_gap_table_puts_both_pose_sources_of_a_variant_side_by_side(tmp_path):
    runs = tmp_path / "runs"
    for name, source, cc in (
        ("sg_gt", "groundtruth", (62.5, 70.0)),
        ("sg_mp", "mediapipe", (8.3, 20.0)),
        ("full_gt", "groundtruth", (50.0, 60.0)),
    ):
        folder = write_run(
            runs, name, SHAPE_GAIT if name.startswith("sg") else FULL, cc=cc, with_extras=False
        )
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["skeletons"] = {"pose_source": source, "normalisation": "paper"}
        metrics["branches"] = {
            "shape": {"settings": {"cc": {"R-1": cc[0] - 4, "mAP": 1.0}}, "mean_weight": 0.7}
        }
        (folder / "metrics.json").write_text(json.dumps(metrics))
    reports = tmp_path / "reports"
    reports.mkdir()
    for source, r1 in (("groundtruth", 100.0), ("mediapipe", 12.5)):
        (reports / f"probe_{source}.json").write_text(
            json.dumps(
                {
                    "pose_source": source,
                    "cues": {"bone ratios": {"cc": {"R-1": r1, "mAP": r1}}},
                    "chance": {"cc": {"R-1": 4.6, "mAP": 16.4}},
                }
            )
        )
    run_report(tmp_path, runs)
    rows = read_csv(reports / "table6.csv")
    learned = [r for r in rows if r["runs"] == "sg_gt / sg_mp"]
    assert len(learned) == 1  # the full model has no MediaPipe side: no row
    assert learned[0]["ground truth CC R-1"] == "62.5" and learned[0]["MediaPipe CC R-1"] == "8.3"
    assert (
        "shape 58.5 (w 0.70) | shape 4.3 (w 0.70)"
        == learned[0]["each branch alone, CC R-1 (GT | MediaPipe)"]
    )
    probe_row = next(r for r in rows if r["variant"].startswith("probe: bone ratios"))
    assert probe_row["ground truth CC R-1"] == "100.0" and probe_row["MediaPipe CC R-1"] == "12.5"

"""The UCalgary protocol on the real Kinect files (README "Real people's skeletons"): their axes
and left/right on people walking toward the sensor, the fixed split, and a skeleton-only train +
evaluate + probe + compare on a few subjects. The data lies at `../shared/data/ucalgary-gait`
beside the repository (as in CI) or where `ASGL_UCALGARY_DATA` says; without it these skip."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_skeleton_datasets import facing
from tiny_models import TINY_RUN_MODEL

from pipeline import skeleton
from pipeline.config import load_config
from pipeline.layouts import load_tracklets, read_sequence
from pipeline.layouts.skeletons import SequenceError
from stages import compare, evaluate, preprocess, probe, train

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ASGL_UCALGARY_DATA") or REPO / ".." / "shared/data/ucalgary-gait")
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"no UCalgary data at {DATA} (set ASGL_UCALGARY_DATA)"
)


def quiet(_message):
    pass


@needs_data
def test_real_walkers_face_the_camera_with_their_left_on_the_right():
    tracklets, _ = load_tracklets("ucalgary", DATA)
    checked = 0
    for tracklet in tracklets:
        try:
            sequence = read_sequence("ucalgary", tracklet)
        except SequenceError:
            continue
        joints = sequence.joints[sequence.present]
        hips = skeleton.hip_centre(joints)[:, 0]
        # every subject walks toward the sensor: z (away from the camera) falls
        assert hips[-1, 2] < hips[0, 2] - 0.5, tracklet.key
        # facing it, so their left shoulder is on the image's right, the head above the hips
        assert np.mean(joints[:, 2, 0] > joints[:, 3, 0]) > 0.9, tracklet.key
        assert (joints[:, 0, 1] < hips[:, 1]).all(), tracklet.key
        # and the body faces −z as our frontal ground truth does (no mirror, no swap)
        assert np.mean(facing(joints)[:, 2] < 0) > 0.95, tracklet.key
        checked += 1
    assert checked >= 150


@needs_data
def test_the_fixed_split_and_the_copies_in_the_real_set():
    tracklets, failures = load_tracklets("ucalgary", DATA)
    train = {t.pid for t in tracklets if t.split == "train"}
    test = {t.pid for t in tracklets if t.split != "train"}
    assert len(train) == 14 and len(test) == 13 and not train & test
    assert "subject10" not in {t.pid for t in tracklets}  # its six files are subject 4's
    copies = [f for f in failures if "identical to" in f.reason]
    assert len(copies) == 8
    queries = [t for t in tracklets if t.split == "query"]
    assert len(queries) == 13 and {t.camera for t in queries} == {1}
    assert {t.clothes.split("/")[1] for t in tracklets} == {"N", "AR", "AL"}


@needs_data
def test_skeleton_only_train_evaluate_probe_and_compare_on_six_subjects(tmp_path):
    root = tmp_path / "ucalgary"
    root.mkdir()
    for path in DATA.glob("subject[1-6]_Seq_*.csv"):
        shutil.copy(path, root / path.name)
    config = load_config(
        "ucalgary",
        overrides={
            "data": {"root": str(root), "cache": str(tmp_path / "ucalgary.h5")},
            "paths": {"runs_dir": str(tmp_path / "runs"), "reports_dir": str(tmp_path / "rep")},
            "model": TINY_RUN_MODEL,
            "train": {"run": "sg", "epochs": 1, "ids_per_batch": 2, "clips_per_id": 2},
            "eval": {"chance_repeats": 10, "bootstrap": 100},
        },
    )
    summary = preprocess.run(config, log=quiet)
    assert summary.cached == 35  # 6 subjects × runs 1-6, less the copy of subject 6 run 5
    record = probe.run(config, log=quiet)
    assert record["tracklets"] == {"query": 3, "gallery": 14}
    metrics = train.run(config, log=quiet, progress=False)
    assert metrics["variant"]["use_appearance"] is False
    assert metrics["skeletons"]["pose_source"] == "skeletons"
    assert metrics["settings"]["standard"]["queries"] == 3
    assert set(metrics["branches"]) == {"shape", "gait"}
    again = evaluate.run(config, log=quiet)  # re-scored from the run folder: no frames read
    assert again["settings"]["standard"]["mAP"] == metrics["settings"]["standard"]["mAP"]
    probe_file = tmp_path / "rep" / "probe_ucalgary.json"
    paired = compare.run(config, first="sg", second=str(probe_file), log=quiet)
    standard = {c.difference.metric: c for c in paired if c.setting == "standard"}
    assert standard["R-1"].b == record["cues"]["bone ratios"]["standard"]["R-1"]
    assert standard["R-1"].a == metrics["settings"]["standard"]["R-1"]
    assert json.loads(probe_file.read_text())["query_keys"] == sorted(record["query_keys"])

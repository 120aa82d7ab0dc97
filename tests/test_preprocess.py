"""The preprocess stage end to end on the tiny synthetic set (MediaPipe runs here), plus the
pure per-tracklet step with a stand-in estimator."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline import extraction, skeleton
from pipeline.cache import ARRAY_FIELDS, SkeletonCache, config_path, failures_path, parts_dir
from pipeline.config import load_config_file
from pipeline.errors import StageError
from pipeline.layouts import Tracklet, load_tracklets
from stages import preprocess
from stages.cli import main

REPO = Path(__file__).resolve().parents[1]


def failure_rows(cache: Path) -> list[dict]:
    with open(failures_path(cache), newline="") as handle:
        return list(csv.DictReader(handle))


def assert_same_tracklets(path_a: Path, path_b: Path, keys=None) -> None:
    """Equal file attributes, and equal arrays and attributes for `keys` (default: all)."""
    with SkeletonCache(path_a) as a, SkeletonCache(path_b) as b:
        assert a.attrs == b.attrs
        if keys is None:
            assert a.keys() == b.keys()
            keys = a.keys()
        for key in keys:
            assert a.meta(key) == b.meta(key), key
            arrays_a, arrays_b = a.read(key, ARRAY_FIELDS), b.read(key, ARRAY_FIELDS)
            for name in ARRAY_FIELDS:
                np.testing.assert_array_equal(
                    arrays_a[name], arrays_b[name], err_msg=f"{key} {name}"
                )


# -------------------------------------------------------------------- pure per-tracklet step


class StandInEstimator:
    """Returns fixed landmarks; frame t has a person iff `present[t]`."""

    def __init__(self, present):
        self.present = np.asarray(present, dtype=bool)

    def process_sequence(self, frames):
        frames = list(frames)
        count = len(frames)
        t = np.arange(count, dtype=np.float32)[:, None, None]
        world = np.broadcast_to(t + np.arange(33, dtype=np.float32)[None, :, None], (count, 33, 3))
        present = self.present[:count] & np.array([f is not None for f in frames])
        out = {
            "world33": np.where(present[:, None, None], world, 0).astype(np.float32),
            "image33": np.where(present[:, None, None], world / 100, 0).astype(np.float32),
            "visibility": np.ones((count, 33), np.float32) * present[:, None],
            "present": present,
        }
        return out


@pytest.fixture
def frame_folder(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), np.zeros((40, 20, 3), np.uint8))
    return Tracklet(
        "s/001_01",
        tuple(str(folder / f"{i}.png") for i in range(4)),
        "",
        "001",
        "001/a",
        1,
        "query",
    )


def test_extract_tracklet_fills_gaps_normalises_and_keeps_the_mask(frame_folder):
    estimator = StandInEstimator([False, True, False, True])
    result = extraction.extract_tracklet(frame_folder, estimator, "paper")
    assert result.failures == [] and result.frames == 4 and result.detected == 2
    arrays, attrs = result.arrays, result.attrs
    np.testing.assert_array_equal(arrays["present"], [False, True, False, True])
    assert attrs["frame_size"].tolist() == [40, 20] and attrs["detection_rate"] == 0.5
    assert (attrs["pid"], attrs["clothes"], attrs["camera"], attrs["split"]) == (
        "001",
        "001/a",
        1,
        "query",
    )
    joints = arrays["joints14"]
    assert joints.shape == (4, 14, 3) and joints.dtype == np.float32
    # the stand-in's landmarks are translations of one pose, so once hip-centred every frame,
    # filled or detected, is the same skeleton; then x / h, y / w, z / (h·w) (Eq. 1)
    pose = skeleton.map_33_to_14(np.arange(33, dtype=np.float32)[None, :, None].repeat(3, -1))
    centred = pose - skeleton.hip_centre(pose)
    np.testing.assert_allclose(
        joints, np.broadcast_to(centred / [40, 20, 800], joints.shape), atol=1e-6
    )
    # 2D: x in units of frame height (× w / h), y unchanged, hip-centred
    image = skeleton.map_33_to_14(
        np.arange(33, dtype=np.float32)[None, :, None].repeat(2, -1) / 100
    )
    expected_2d = image - skeleton.hip_centre(image)
    expected_2d[..., 0] *= 20 / 40
    np.testing.assert_allclose(
        arrays["joints14_2d"], np.broadcast_to(expected_2d, (4, 14, 2)), atol=1e-6
    )
    # raw MediaPipe arrays are stored as detected: zero rows where nobody was found
    assert not arrays["world33"][0].any() and arrays["world33"][1].any()


def test_unreadable_frames_are_not_present_and_reported(frame_folder):
    Path(frame_folder.frames[2]).write_bytes(b"")
    result = extraction.extract_tracklet(frame_folder, StandInEstimator([True] * 4))
    np.testing.assert_array_equal(result.arrays["present"], [True, True, False, True])
    assert result.attrs["unreadable"].tolist() == [2]
    assert [(f.reason, f.path) for f in result.failures] == [
        ("unreadable frame", frame_folder.frames[2])
    ]


def test_a_truncated_jpeg_is_an_unreadable_frame_not_a_grey_one(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    frames = tuple(str(folder / f"{i}.jpg") for i in range(3))
    for i, path in enumerate(frames):
        cv2.imwrite(path, np.random.default_rng(i).integers(0, 255, (96, 64, 3), dtype=np.uint8))
    whole = Path(frames[1]).read_bytes()
    Path(frames[1]).write_bytes(whole[: len(whole) // 3])
    tracklet = Tracklet("s/001_02", frames, "", "001", "001/a", 1, "query")
    result = extraction.extract_tracklet(tracklet, StandInEstimator([True] * 3))
    np.testing.assert_array_equal(result.arrays["present"], [True, False, True])
    assert result.attrs["unreadable"].tolist() == [1]
    assert [(f.reason, f.path) for f in result.failures] == [("unreadable frame", frames[1])]


def test_no_detection_is_a_failure_never_zeros(frame_folder):
    result = extraction.extract_tracklet(frame_folder, StandInEstimator([False] * 4))
    assert result.arrays is None and result.attrs is None
    assert [(f.reason, f.key) for f in result.failures] == [("no person detected", "s/001_01")]


# ------------------------------------------------------------------------ stage, MediaPipe


def test_cache_holds_every_tracklet_with_consistent_arrays(synthetic_root, skeleton_cache):
    tracklets, load_failures = load_tracklets("ccvid", synthetic_root)
    assert load_failures == []
    failed = {
        row["key"] for row in failure_rows(skeleton_cache) if row["reason"] == "no person detected"
    }
    with SkeletonCache(skeleton_cache) as cache:
        assert set(cache.keys()) | failed == {t.key for t in tracklets}
        assert len(cache) >= len(tracklets) - 1  # the synthetic set is made to be detected
        assert cache.attrs["normalisation"] == "paper" and cache.attrs["model_complexity"] == 1
        for tracklet in tracklets:
            if tracklet.key in failed:
                continue
            meta = cache.meta(tracklet.key)
            arrays = cache.read(tracklet.key, ARRAY_FIELDS)
            count = len(tracklet.frames)
            assert (meta["pid"], meta["clothes"], meta["camera"], meta["split"]) == (
                tracklet.pid,
                tracklet.clothes,
                tracklet.camera,
                tracklet.split,
            )
            assert meta["source"] == tracklet.source and meta["frames"] == count
            assert meta["frame_size"] == cv2.imread(tracklet.frames[0]).shape[:2]
            present = arrays["present"]
            assert present.shape == (count,) and present.any()
            assert meta["detection_rate"] == pytest.approx(present.mean())
            assert not arrays["world33"][~present].any()
            assert arrays["joints14"].shape == (count, 14, 3)
            assert arrays["joints14_2d"].shape == (count, 14, 2)
            # joints14 is exactly map → fill → normalise of what MediaPipe returned
            expected = skeleton.normalise(
                skeleton.fill_missing(skeleton.map_33_to_14(arrays["world33"]), present),
                meta["frame_size"],
                "paper",
            )
            np.testing.assert_allclose(arrays["joints14"], expected, atol=1e-7)
            expected_2d = extraction.image_joints_2d(arrays["image33"], present, meta["frame_size"])
            np.testing.assert_allclose(arrays["joints14_2d"], expected_2d, atol=1e-7)
    assert load_config_file(config_path(skeleton_cache)).data.cache == str(skeleton_cache)


def test_resume_after_sigkill_equals_an_uninterrupted_run(
    synthetic_root, skeleton_cache, preprocess_config, tmp_path
):
    cache = tmp_path / "killed.h5"
    script = (
        "from pipeline.config import load_config\n"
        "from stages import preprocess\n"
        "preprocess.run(load_config('demo', overrides={"
        f"'data': {{'root': {str(synthetic_root)!r}, 'cache': {str(cache)!r}}}, "
        "'preprocess': {'workers': 1, 'limit': 6}}))\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while not list(parts_dir(cache).glob("part-*.h5")):
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no finished batch within 120 s"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert not cache.exists(), "the killed run must not have produced a cache"

    summary = preprocess.run(preprocess_config(synthetic_root, cache, limit=6))
    assert summary.skipped >= 1 and summary.processed < summary.tracklets == 6
    assert not parts_dir(cache).exists()
    keys = [t.key for t in load_tracklets("ccvid", synthetic_root)[0][:6]]
    assert SkeletonCache(cache).keys() == sorted(keys)
    assert_same_tracklets(cache, skeleton_cache, keys)


def descendants(pid: int) -> set[int]:
    """Live processes below `pid` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc")
def test_workers_exit_when_the_main_process_is_killed(synthetic_root, tmp_path):
    # They used to run on: 2 workers and 2 resource trackers, 11 minutes after `kill -9`.
    cache = tmp_path / "orphans.h5"
    script = (
        "from pipeline.config import load_config\n"
        "from stages import preprocess\n"
        "preprocess.run(load_config('demo', overrides={"
        f"'data': {{'root': {str(synthetic_root)!r}, 'cache': {str(cache)!r}}}, "
        "'preprocess': {'workers': 2}}))\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while not list(parts_dir(cache).glob("part-*.h5")):
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no finished batch within 120 s"
            time.sleep(0.01)
        workers = descendants(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert workers, "the run had no worker processes"
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if alive(pid)], "workers outlived their parent"
    finally:
        child.kill()
        child.wait()
        for pid in workers:  # only the processes this test started
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_bad_inputs_become_failure_rows_and_the_rest_is_cached(
    synthetic_root, preprocess_config, tmp_path
):
    root = tmp_path / "ccvid"
    good = load_tracklets("ccvid", synthetic_root)[0][:2]
    for tracklet in good:
        shutil.copytree(Path(tracklet.source), root / tracklet.key)
    damaged = root / good[0].key
    frame_names = sorted(p.name for p in damaged.glob("*.jpg"))
    (damaged / frame_names[1]).write_bytes(b"")  # zero-byte
    (damaged / frame_names[3]).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")  # corrupt
    nobody = root / "session1/901_01"
    nobody.mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(nobody / f"{i:05d}.jpg"), np.full((64, 48, 3), 127, np.uint8))
    (root / "session1/902_01").mkdir(parents=True)  # empty folder
    (root / "session1/903_01").mkdir(parents=True)  # only undecodable frames
    (root / "session1/903_01/00000.jpg").write_bytes(b"")
    lines = [f"{t.key} {t.pid} {t.clothes.split('/')[1]}" for t in good]
    lines += ["session1/901_01 901 a", "session1/902_01 902 a", "session1/903_01 903 a"]
    lines += ["session1/904_01 904 a"]  # missing folder
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "query.txt").write_text("")
    (root / "gallery.txt").write_text("")

    cache = tmp_path / "bad.h5"
    summary = preprocess.run(preprocess_config(root, cache))
    rows = {(row["reason"], Path(row["path"]).name) for row in failure_rows(cache)}
    assert rows == {
        ("unreadable frame", frame_names[1]),
        ("unreadable frame", frame_names[3]),
        ("no person detected", "901_01"),
        ("empty folder", "902_01"),
        ("no readable frame", "903_01"),
        ("missing folder", "904_01"),
    }
    assert summary.failures == 6 and summary.cached == 2 and summary.failed == 2
    with SkeletonCache(cache) as reader:
        assert reader.keys() == sorted(t.key for t in good)  # nothing zero-filled
        present = reader.read(good[0].key)["present"]
        assert not present[1] and not present[3] and present[[0, 2]].all()
        assert reader.meta(good[0].key)["unreadable"] == (1, 3)

    # --strict: same rows (the cached tracklet's bad frames included), then a non-zero exit
    with pytest.raises(StageError, match=r"6 input problem.*--strict.*bad\.failures\.csv"):
        preprocess.run(preprocess_config(root, cache, strict=True))
    assert {(row["reason"], Path(row["path"]).name) for row in failure_rows(cache)} == rows


def test_folder_dataset_with_videos(synthetic_root, preprocess_config, tmp_path):
    source = load_tracklets("ccvid", synthetic_root)[0][0]
    root = tmp_path / "own"
    root.mkdir()
    height, width = cv2.imread(source.frames[0]).shape[:2]
    writer = cv2.VideoWriter(
        str(root / "walk.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (width, height)
    )
    for frame in source.frames:
        writer.write(cv2.imread(frame))
    writer.release()
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    (root / "manifest.csv").write_text(
        "path,pid,clothes,camera,split\nwalk.avi,ann,coat,1,query\nbroken.mp4,bob,hat,2,gallery\n"
    )
    config = preprocess_config(root, tmp_path / "own.h5")
    config.data.dataset = "folder"
    summary = preprocess.run(config)
    assert [(row["reason"], row["path"]) for row in failure_rows(tmp_path / "own.h5")] == [
        ("unreadable video", str(root / "broken.mp4"))
    ]
    with SkeletonCache(tmp_path / "own.h5") as cache:
        assert cache.keys() == ["walk.avi"]
        meta = cache.meta("walk.avi")
        assert meta["frames"] == len(source.frames) and meta["frame_size"] == (height, width)
        assert meta["source"] == str(root / "walk.avi") and meta["clothes"] == "ann/coat"
    assert summary.detection_rate > 0


def test_changed_normalisation_needs_overwrite(
    synthetic_root, skeleton_cache, preprocess_config, tmp_path
):
    cache = tmp_path / "stale.h5"
    shutil.copy(skeleton_cache, cache)
    with pytest.raises(StageError, match="normalisation 'paper' → 'none'.*preprocess.overwrite"):
        preprocess.run(preprocess_config(synthetic_root, cache, normalisation="none", limit=2))
    summary = preprocess.run(
        preprocess_config(synthetic_root, cache, normalisation="none", limit=2, overwrite=True)
    )
    assert summary.tracklets == 2 and summary.processed == 2
    with SkeletonCache(cache) as plain, SkeletonCache(skeleton_cache) as paper:
        assert plain.attrs["normalisation"] == "none" and len(plain) == 2
        for key in plain.keys():
            h, w = paper.meta(key)["frame_size"]
            np.testing.assert_allclose(
                plain.read(key)["joints14"] / [h, w, h * w], paper.read(key)["joints14"], atol=1e-7
            )


def test_dask_backend_on_a_local_cluster(
    synthetic_root, skeleton_cache, preprocess_config, tmp_path
):
    distributed = pytest.importorskip("distributed")
    cache = tmp_path / "dask.h5"
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        config = preprocess_config(
            synthetic_root, cache, backend="dask", scheduler=cluster.scheduler_address, limit=3
        )
        summary = preprocess.run(config)
    assert summary.processed == 3
    keys = SkeletonCache(cache).keys()
    assert len(keys) == 3
    assert_same_tracklets(cache, skeleton_cache, keys)


def test_cli_two_local_workers_and_wrong_root(synthetic_root, skeleton_cache, tmp_path):
    cache = tmp_path / "cli.h5"
    args = ["preprocess", "--profile", "demo", "--root", str(synthetic_root), "--cache", str(cache)]
    result = CliRunner().invoke(main, [*args, "--workers", "2", "--limit", "4"])
    assert result.exit_code == 0, result.output
    assert "4/4 tracklets cached" in result.output and "frames/s" in result.output
    assert_same_tracklets(cache, skeleton_cache, SkeletonCache(cache).keys())

    wrong = CliRunner().invoke(
        main, ["preprocess", "--root", str(tmp_path / "nope"), "--cache", str(cache)]
    )
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output
    assert "expected a CCVID root" in wrong.output and "train.txt" in wrong.output


@pytest.mark.parametrize("mode", ["paper", "unified"])
def test_groundtruth_source_writes_the_rendered_joints_in_the_cache_schema(
    synthetic_root, preprocess_config, skeleton_cache, tmp_path, mode
):
    from pipeline.synth.layout import GT_FILE, GT_IMAGE_FILE

    cache = tmp_path / "gt.h5"
    config = preprocess_config(synthetic_root, cache, pose_source="groundtruth", normalisation=mode)
    summary = preprocess.run(config)
    assert summary.failed == 0 and summary.detection_rate == 1.0
    with SkeletonCache(cache) as gt, SkeletonCache(skeleton_cache) as estimated:
        assert gt.attrs["pose_source"] == "groundtruth" and gt.attrs["normalisation"] == mode
        assert gt.attrs["fingerprint"] != estimated.attrs["fingerprint"]
        assert gt.keys() == estimated.keys()
        for key in gt.keys():
            arrays = gt.read(key, ARRAY_FIELDS)
            frames = estimated.read(key, ("joints14",))["joints14"]
            truth = np.load(synthetic_root / key / GT_FILE)
            meta = gt.meta(key)
            np.testing.assert_allclose(
                arrays["joints14"], skeleton.normalise(truth, tuple(meta["frame_size"]), mode)
            )
            assert arrays["joints14"].shape == frames.shape and arrays["present"].all()
            # the truth where the frames show it, in MediaPipe's image units (frame heights)
            pixels = np.load(synthetic_root / key / GT_IMAGE_FILE)
            height = meta["frame_size"][0]
            expected_2d = skeleton.normalise(pixels / height, tuple(meta["frame_size"]), "none")
            np.testing.assert_allclose(arrays["joints14_2d"], expected_2d, atol=1e-6)
            assert meta["frame_size"] == estimated.meta(key)["frame_size"]
        assert gt.attrs["groundtruth_2d"] == "image"


def test_groundtruth_source_refuses_a_set_rendered_without_image_truth(
    synthetic_root, preprocess_config, tmp_path
):
    from pipeline.synth.layout import GT_IMAGE_FILE

    root = tmp_path / "old"
    shutil.copytree(synthetic_root, root)
    for path in root.glob(f"*/*/{GT_IMAGE_FILE}"):
        path.unlink()
    cache = tmp_path / "gt.h5"
    with pytest.raises(StageError, match="rendered before .*synth --overwrite"):
        preprocess.run(preprocess_config(root, cache, pose_source="groundtruth"))
    assert not cache.exists() and not parts_dir(cache).exists()


def test_groundtruth_source_refuses_a_root_that_is_not_synthetic(
    synthetic_root, preprocess_config, tmp_path
):
    root = tmp_path / "real"
    shutil.copytree(synthetic_root, root)
    (root / "synth_meta.json").unlink()
    cache = tmp_path / "gt.h5"
    with pytest.raises(StageError, match="not one .*set `preprocess.pose_source` to mediapipe"):
        preprocess.run(preprocess_config(root, cache, pose_source="groundtruth"))
    assert not cache.exists() and not parts_dir(cache).exists()
    result = CliRunner().invoke(
        main,
        [
            "preprocess",
            "--profile",
            "demo",
            "--root",
            str(root),
            "--cache",
            str(cache),
            "--pose-source",
            "groundtruth",
        ],
    )
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "set --pose-source to mediapipe" in result.output

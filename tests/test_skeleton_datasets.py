"""Skeleton-sequence datasets (no frames): the generic `skeletons` manifest adapter, the UCalgary
Kinect reader (joint mapping, axes, left/right, the walker's frames), bad input, and preprocess
writing them into the cache. The real UCalgary files are tested in test_ucalgary.py."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest

from pipeline import skeleton
from pipeline.cache import SkeletonCache, failures_path
from pipeline.config import load_config
from pipeline.data import load_splits
from pipeline.errors import StageError
from pipeline.layouts import DatasetLayoutError, Tracklet, load_tracklets, read_sequence
from pipeline.layouts import ucalgary as uc
from pipeline.layouts.skeletons import SequenceError, drop_duplicates
from pipeline.synth.body import joints14, sample_body_shape, sample_gait, walk
from pipeline.synth.camera import look_at, rotate
from pipeline.synth.render import FPS
from stages import preprocess

# ------------------------------------------------------------------------------ helpers


def facing(joints: np.ndarray) -> np.ndarray:
    """(T, 14, 3) → (T, 3): where the body faces, from its own left-right and up axes; with
    right-handed axes, left × up points forward. A mirror (one axis flipped, or left and right
    swapped) turns it backwards."""
    lateral = (joints[:, 2] - joints[:, 3]) + (joints[:, 8] - joints[:, 9])
    up = joints[:, 1] - skeleton.hip_centre(joints)[:, 0]
    return np.cross(lateral, up)


def frontal_groundtruth(frames: int = 30) -> np.ndarray:
    """Our synthetic ground truth for a frontal view (yaw 0: the camera ahead of the walker,
    looking back at them), made as `pipeline.synth.render` makes it: camera axes, hip-centred."""
    rng = np.random.default_rng(0)
    motion = walk(sample_body_shape(rng), sample_gait(rng), frames, FPS)
    rotation = look_at(np.array([0.0, 1.0, 6.0]), np.array([0.0, 1.0, 0.0]))
    gt = rotate(joints14(motion), rotation)
    return gt - skeleton.hip_centre(gt)


def kinect_walker(frames: int = 60, start_z: float = 4.0, x: float = 0.0) -> np.ndarray:
    """(T, 18, 3) Kinect camera-space joints (X to the sensor's left, Y up, Z away) of a person
    walking toward the sensor at 1 m/s. Facing the sensor, the person's left hand side is on
    the sensor's right, i.e. at smaller X."""
    z = start_z - np.arange(frames) / uc.FPS
    body = {  # (X offset, height Y, Z offset toward the sensor)
        "head": (0.0, 1.6, 0.0),
        "neck": (0.0, 1.45, 0.0),
        "spine_mid": (0.0, 1.2, 0.0),
        "spine_base": (0.0, 0.95, 0.0),
        "shoulder_left": (-0.2, 1.4, 0.0),
        "shoulder_right": (0.2, 1.4, 0.0),
        "elbow_left": (-0.25, 1.15, 0.0),
        "elbow_right": (0.25, 1.15, 0.0),
        "wrist_left": (-0.27, 0.9, -0.05),
        "wrist_right": (0.27, 0.9, -0.05),
        "hip_left": (-0.1, 0.95, 0.0),
        "hip_right": (0.1, 0.95, 0.0),
        "knee_left": (-0.1, 0.5, -0.02),
        "knee_right": (0.1, 0.5, -0.02),
        "ankle_left": (-0.1, 0.08, 0.0),
        "ankle_right": (0.1, 0.08, 0.0),
        "foot_left": (-0.1, 0.02, -0.15),  # toes point at the sensor (smaller Z)
        "foot_right": (0.1, 0.02, -0.15),
    }
    joints = np.zeros((frames, len(uc.KINECT_JOINTS), 3), dtype=np.float32)
    for j, name in enumerate(uc.KINECT_JOINTS):
        dx, y, dz = body[name]
        joints[:, j] = np.stack([np.full(frames, x + dx), np.full(frames, y), z + dz], -1)
    return joints


def header() -> str:
    names = (
        "Foot Left,Ankle Left,Knee Left,Hip Left,Foot Right,Ankle Right,Knee Right,Hip Right,"
        "Spine Base,Spine Mid,Neck,Head,ShouldL,ShouldR,WristLeft,WristRight,ElbowLeft,ElbowRight"
    ).split(",")
    cells = [f"{name} X, Y, Z" for name in names]
    return ",".join(cells + ["SholdD", "LSHD", "RSHD", "HIPD", "LWD", "RWD", "ShoulDX", "HipDX"])


def write_kinect(path, joints18: np.ndarray) -> None:
    rows = [",".join(f"{v:.6f}" for v in [*frame.reshape(-1), *[0.3] * 8]) for frame in joints18]
    path.write_text("\n".join([header(), *rows]) + "\n")


# ------------------------------------------------------------------------------ UCalgary


def test_kinect_joints_map_to_ours_as_spec_4_1_defines_them():
    kinect = np.random.default_rng(0).normal(size=(3, 18, 3)).astype(np.float32)
    ours = uc.kinect_to_joints14(kinect) * uc.KINECT_TO_OURS  # undo the axes: compare joints
    k = {name: kinect[:, i] for i, name in enumerate(uc.KINECT_JOINTS)}
    expected = {
        "head": k["head"],
        "neck": (k["shoulder_left"] + k["shoulder_right"]) / 2,  # mid-shoulder, not Kinect's neck
        "l_shoulder": k["shoulder_left"],
        "r_elbow": k["elbow_right"],
        "l_hand": k["wrist_left"],
        "r_hip": k["hip_right"],
        "l_knee": k["knee_left"],
        "l_foot": (k["ankle_left"] + k["foot_left"]) / 2,
        "r_foot": (k["ankle_right"] + k["foot_right"]) / 2,
    }
    for name, value in expected.items():
        np.testing.assert_allclose(ours[:, skeleton.JOINT_NAMES.index(name)], value, atol=1e-6)


def test_kinect_axes_become_ours_without_a_mirror_as_in_our_frontal_ground_truth():
    ours = uc.kinect_to_joints14(kinect_walker())
    truth = frontal_groundtruth()
    for joints in (ours - skeleton.hip_centre(ours), truth):
        # y points down: the head above the hips, the feet below
        assert (joints[:, 0, 1] < 0).all() and (joints[:, 12, 1] > 0).all()
        # walking toward the camera, the person's left is on the image's right (+x)
        assert (joints[:, 2, 0] > joints[:, 3, 0]).all() and (
            joints[:, 8, 0] > joints[:, 9, 0]
        ).all()
        # and they face the camera (−z): not mirrored, left and right not swapped
        assert (facing(joints)[:, 2] < 0).all()
    # z points away from the camera: a walker approaching it has decreasing z
    hips = skeleton.hip_centre(ours)[:, 0]
    assert hips[-1, 2] < hips[0, 2] - 0.5
    # a mirrored conversion (x kept) would be caught by the facing test above
    mirrored = uc.kinect_to_joints14(kinect_walker()) * np.array([-1.0, 1.0, 1.0])
    assert (facing(mirrored)[:, 2] > 0).all()


def test_the_walker_is_kept_and_a_bystander_or_guessed_legs_are_not():
    walker = kinect_walker(90)
    bystander = kinect_walker(90, start_z=4.3, x=1.8)
    bystander[..., 2] = 4.3  # stands still at the side
    mixed = walker.copy()
    mixed[:20] = bystander[:20]  # the sensor tracked the bystander first
    mixed[50:90:2] = bystander[50:90:2]  # then alternated between the two bodies
    mixed[40, :, 1] *= 0.5  # one frame with the legs out of view: stature far below 1 m
    frames = uc.walker_frames(uc.kinect_to_joints14(mixed))
    expected = [t for t in range(20, 90) if t != 40 and not (t >= 50 and t % 2 == 0)]
    assert frames.tolist() == expected
    with pytest.raises(SequenceError, match="no walking person.*standing"):
        uc.walker_frames(uc.kinect_to_joints14(bystander))
    with pytest.raises(SequenceError, match="no walking person.*30 frames"):
        uc.walker_frames(uc.kinect_to_joints14(walker[:20]))


def test_a_sequence_is_trimmed_to_the_walker_and_its_gaps_are_not_present(tmp_path):
    mixed = kinect_walker(90)
    mixed[:10, :, 0] += 1.8  # another body first
    mixed[60] = 0.0  # a frame the sensor did not track (all joints at the origin)
    path = tmp_path / "subject2_Seq_1_Gen_M_GeometricPositions_N.csv"
    write_kinect(path, mixed)
    sequence = uc.read_sequence(path)
    assert sequence.first_frame == 10 and len(sequence.joints) == 80
    assert not sequence.present[50] and sequence.present.sum() == 79
    np.testing.assert_allclose(
        sequence.joints[0], uc.kinect_to_joints14(mixed[10:11])[0], atol=1e-5
    )


def ucalgary_tree(root, subjects=(1, 2, 3, 4), runs=(1, 2, 3, 5)):
    conditions = {1: "N", 2: "N", 3: "AR", 4: "AR", 5: "AL", 6: "AL", 7: "OA"}
    for subject in subjects:
        for run in runs:
            walker = kinect_walker(60) * np.float32(1 + 0.01 * subject + 0.001 * run)
            name = f"subject{subject}_Seq_{run}_Gen_M_GeometricPositions_{conditions[run]}.csv"
            write_kinect(root / name, walker)
    return root


def test_ucalgary_split_cameras_clothes_and_copies(tmp_path):
    root = ucalgary_tree(tmp_path, runs=(1, 2, 3, 5, 7))
    copy = root / "subject4_Seq_2_Gen_M_GeometricPositions_N.csv"
    copy.write_bytes((root / "subject4_Seq_1_Gen_M_GeometricPositions_N.csv").read_bytes())
    (root / "notes.csv").write_text("x\n")
    (root / "README.md").write_text("not a sequence")
    tracklets, failures = load_tracklets("ucalgary", root)
    by_key = {t.key: t for t in tracklets}
    q = by_key["subject2_Seq_1_Gen_M_GeometricPositions_N.csv"]
    assert (q.pid, q.split, q.camera, q.clothes) == ("subject02", "query", 1, "subject02/N")
    g = by_key["subject2_Seq_3_Gen_M_GeometricPositions_AR.csv"]
    assert (g.split, g.camera, g.clothes) == ("gallery", 3, "subject02/AR")
    assert {t.split for t in tracklets if t.pid in ("subject01", "subject03")} == {"train"}
    assert not any("Seq_7" in t.key for t in tracklets)  # marked "ignore" by the source
    assert all(t.skeleton and not t.has_frames for t in tracklets)
    reasons = {f.path.split("/")[-1]: f.reason for f in failures}
    assert reasons["notes.csv"] == "not a UCalgary sequence file name"
    assert "identical to subject4_Seq_1" in reasons["subject4_Seq_2_Gen_M_GeometricPositions_N.csv"]
    assert len(tracklets) == 15
    with pytest.raises(DatasetLayoutError, match="(?s)does not exist.*subject<N>_Seq_<run>"):
        load_tracklets("ucalgary", tmp_path / "elsewhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetLayoutError, match="no UCalgary sequence files"):
        load_tracklets("ucalgary", empty)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty file"),
        (f"{header()}\n", "empty sequence"),
        ("a,b,c\n1,2,3\n", "header names the joints"),
        (f"{header()}\n" + ",".join(["1"] * 61) + "\n", "line 2 has 61 columns, expected 62"),
        (f"{header()}\n" + ",".join(["1"] * 61 + ["x"]) + "\n", "line 2 holds a cell"),
    ],
)
def test_bad_ucalgary_files_get_one_clear_message(tmp_path, text, message):
    path = tmp_path / "subject2_Seq_1_Gen_M_GeometricPositions_N.csv"
    path.write_text(text)
    with pytest.raises(SequenceError, match=message):
        uc.read_sequence(path)


# ------------------------------------------------------------------------------ generic set


@pytest.fixture
def sequence_root(tmp_path):
    """A `skeletons` manifest: 3 people × 2 sequences as .npy and .csv, plus bad rows."""
    root = tmp_path / "walks"
    root.mkdir()
    rows = [("path", "pid", "clothes", "camera", "split")]
    truth = {}
    for p, person in enumerate(("ann", "bob", "cid")):
        for s in range(2):
            joints = frontal_groundtruth(20) * (1 + 0.05 * p) + np.array([0.3 * s, 0.0, 3.0])
            name = f"{person}_{s}.{'npy' if s == 0 else 'csv'}"
            if s == 0:
                np.save(root / name, joints.astype(np.float32))
            else:
                flat = joints.reshape(len(joints), -1)
                lines = [",".join(f"{v:.7f}" for v in row) for row in flat]
                (root / name).write_text("\n".join(["h" * 3 + ",x" * 41, *lines]) + "\n")
            truth[name] = joints
            split = "train" if person != "cid" else ("query" if s == 0 else "gallery")
            rows.append((name, person, f"c{s}", str(s + 1), split))
    nan = truth["bob_0.npy"].copy()
    nan[[3, 4]] = np.nan
    np.save(root / "bob_0.npy", nan.astype(np.float32))
    (root / "bad.csv").write_text("1,2,3\n")
    (root / "empty.npy").write_bytes(b"")
    (root / "clip.txt").write_text("")
    rows += [
        ("bad.csv", "dan", "c0", "1", "train"),
        ("empty.npy", "dan", "c0", "2", "train"),
        ("gone.npy", "dan", "c0", "3", "train"),
        ("clip.txt", "dan", "c0", "4", "train"),
    ]
    with open(root / "manifest.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return root, truth


def skeleton_config(root, cache, **preprocess_fields):
    return load_config(
        "demo",
        overrides={
            "data": {"dataset": "skeletons", "root": str(root), "cache": str(cache)},
            "preprocess": preprocess_fields,
            "model": {"use_appearance": False},
        },
    )


def test_generic_sequences_are_cached_hip_centred_and_bad_ones_reported(sequence_root, tmp_path):
    root, truth = sequence_root
    cache = tmp_path / "walks.h5"
    summary = preprocess.run(skeleton_config(root, cache), log=lambda _m: None)
    assert summary.cached == 6 and summary.failed == 2  # bad.csv, empty.npy
    rows = {(r["reason"].split(":")[0].split(" (")[0], r["key"]) for r in read_rows(cache)}
    assert ("missing file", "gone.npy") in rows
    assert ("not a .npy or .csv sequence", "clip.txt") in rows
    assert ("line 1 has 3 columns, expected 42", "bad.csv") in rows
    assert ("unreadable .npy file", "empty.npy") in rows
    assert ("unreadable frame", "bob_0.npy") in rows  # the NaN rows, each named
    with SkeletonCache(cache) as opened:
        assert opened.attrs["pose_source"] == "skeletons"
        meta = opened.meta("cid_1.csv")
        assert tuple(meta["frame_size"]) == (1, 1) and meta["split"] == "gallery"
        joints = opened.read("cid_1.csv", ("joints14",))["joints14"]
        expected = truth["cid_1.csv"] - skeleton.hip_centre(truth["cid_1.csv"])
        np.testing.assert_allclose(joints, expected, atol=1e-5)  # paper ≡ none here: metres
        bob = opened.read("bob_0.npy", ("present", "joints14"))
        assert bob["present"].tolist() == [t not in (3, 4) for t in range(20)]
        assert np.isfinite(bob["joints14"]).all()
        assert opened.meta("bob_0.npy")["unreadable"] == (3, 4)


def read_rows(cache):
    with open(failures_path(cache), newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_joints_transform_is_applied_recorded_and_checked(sequence_root, tmp_path, monkeypatch):
    root, truth = sequence_root
    module = tmp_path / "mods" / "stretch_joints.py"
    module.parent.mkdir()
    module.write_text(
        "def stretch(joints, rng, depth=1.0):\n"
        "    joints = joints.copy()\n"
        "    joints[..., 2] *= depth + 0 * rng.random()\n"
        "    return joints\n"
        "def broken(joints, rng):\n"
        "    return joints[:1]\n"
    )
    monkeypatch.syspath_prepend(str(module.parent))
    cache = tmp_path / "stretched.h5"
    config = skeleton_config(
        root, cache, joints_transform="stretch_joints:stretch", transform_args="depth=2.0"
    )
    preprocess.run(config, log=lambda _m: None)
    with SkeletonCache(cache) as opened:
        assert opened.attrs["joints_transform"] == "stretch_joints:stretch depth=2.0"
        joints = opened.read("ann_0.npy", ("joints14",))["joints14"]
    expected = truth["ann_0.npy"] - skeleton.hip_centre(truth["ann_0.npy"])
    np.testing.assert_allclose(joints[..., 2], 2.0 * expected[..., 2], atol=1e-5)
    np.testing.assert_allclose(joints[..., :2], expected[..., :2], atol=1e-5)
    # another transform is another cache: refused unless rebuilt
    plain = dataclasses.replace(config.preprocess, joints_transform="", transform_args="")
    with pytest.raises(StageError, match="joints_transform"):
        preprocess.run(dataclasses.replace(config, preprocess=plain), log=lambda _m: None)
    for spec, args, message in (
        ("stretch_joints", "", "expected 'package.module:function'"),
        ("stretch_joints:nothing", "", "cannot be loaded"),
        ("stretch_joints:stretch", "{depth", "not JSON"),
        ("stretch_joints:stretch", "depth", "expected name=value"),
        ("stretch_joints:broken", "", "returned shape"),
    ):
        bad = dataclasses.replace(config.preprocess, joints_transform=spec, transform_args=args)
        bad = dataclasses.replace(bad, overwrite=True)
        with pytest.raises(StageError, match=message):
            preprocess.run(dataclasses.replace(config, preprocess=bad), log=lambda _m: None)


def test_pose_sources_and_frames_are_checked(sequence_root, tmp_path, synthetic_root):
    root, _ = sequence_root
    with pytest.raises(StageError, match="drop --pose-source groundtruth"):
        preprocess.run(skeleton_config(root, tmp_path / "a.h5", pose_source="groundtruth"))
    frames = load_config(
        "demo",
        overrides={
            "data": {"root": str(synthetic_root), "cache": str(tmp_path / "b.h5")},
            "preprocess": {"pose_source": "skeletons"},
        },
    )
    with pytest.raises(StageError, match="has frames"):
        preprocess.run(frames)
    cache = tmp_path / "walks.h5"
    config = skeleton_config(root, cache)
    preprocess.run(config, log=lambda _m: None)
    with_frames = dataclasses.replace(
        config, model=dataclasses.replace(config.model, use_appearance=True)
    )
    with pytest.raises(
        StageError, match="appearance branch reads frames.*off: `model.use_appearance`"
    ):
        load_splits(with_frames, needs_joints=True, log=lambda _m: None)
    splits = load_splits(config, needs_joints=True, log=lambda _m: None)
    assert len(splits.query) == 1 and len(splits.gallery) == 1 and len(splits.train) == 4


def test_a_sequence_file_that_repeats_another_is_dropped(tmp_path):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.zeros((5, 14, 3), dtype=np.float32))
    b.write_bytes(a.read_bytes())
    tracklets = [Tracklet(p.name, (), "", "x", "x/c", 1, "train", str(p)) for p in (a, b)]
    kept, dropped = drop_duplicates(tracklets)
    assert [t.key for t in kept] == ["a.npy"] and dropped[0].key == "b.npy"
    np.save(a, np.full((5, 14, 3), np.nan, dtype=np.float32))
    with pytest.raises(SequenceError, match="no complete frame"):
        read_sequence("skeletons", kept[0])
    np.save(a, np.zeros((5, 13, 3), dtype=np.float32))
    with pytest.raises(SequenceError, match=r"wrong shape \(5, 13, 3\)"):
        read_sequence("skeletons", kept[0])

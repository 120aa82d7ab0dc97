"""tools/landmark_study.py: the set's plan re-created from its config.toml renders a saved
tracklet again (its frames and truth), and the image error finds MediaPipe's head where the
saved 2D truth is."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.synth.layout import GT_FILE, GT_IMAGE_FILE, tracklet_person
from pipeline.synth.render import render_tracklet

TOOL = Path(__file__).resolve().parents[1] / "tools" / "landmark_study.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("landmark_study", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_the_recreated_plan_renders_the_saved_tracklet_again(study, synthetic_root):
    plan = study.set_plan(synthetic_root)
    keys = sorted(
        str(p.parent.relative_to(synthetic_root)) for p in synthetic_root.glob(f"*/*/{GT_FILE}")
    )
    assert sorted(spec.key for spec in plan.tracklets) == keys
    spec = plan.tracklets[1]
    person, rng = tracklet_person(plan, spec)
    outfit, scene = plan.outfits[spec.identity][spec.outfit], plan.scenes[spec.camera]
    images, joints, pixels = render_tracklet(
        person, outfit, scene, spec.view, plan.frames, plan.size, rng
    )
    folder = synthetic_root / spec.key
    np.testing.assert_array_equal(joints, np.load(folder / GT_FILE))
    np.testing.assert_array_equal(pixels, np.load(folder / GT_IMAGE_FILE))
    first = cv2.imdecode(np.fromfile(sorted(folder.glob("*.jpg"))[0], np.uint8), cv2.IMREAD_COLOR)
    # JPEG: the saved frame is the rendered one up to compression
    assert np.abs(first.astype(int) - images[0].astype(int)).mean() < 3


def test_image_error_finds_mediapipe_close_at_the_head(
    study, synthetic_root, skeleton_cache, capsys
):
    study.image_error(str(synthetic_root), str(skeleton_cache))
    rows = {
        line.split()[0]: [float(v) for v in line.split()[1:]]
        for line in capsys.readouterr().out.splitlines()[2:]
    }
    assert len(rows) == 14
    assert rows["head"][0] < 8.0 and rows["neck"][0] < 8.0  # bias, pixels


def test_control_2d_adds_mediapipe_sized_error_to_the_image_joints_only(
    study, synthetic_root, skeleton_cache, preprocess_config, tmp_path
):
    from pipeline.cache import SkeletonCache
    from stages import preprocess

    truth = tmp_path / "gt.h5"
    preprocess.run(preprocess_config(synthetic_root, truth, pose_source="groundtruth"))
    measured = study.image_error_columns(str(synthetic_root), str(skeleton_cache))[0]

    def offsets(component: str, scale: float) -> tuple[np.ndarray, float]:
        """(tracklets, T, 14, 2) control − truth in pixels, and the control's joints14 error."""
        out = tmp_path / f"{component}-{scale}.h5"
        args = (str(synthetic_root), str(skeleton_cache), str(truth), str(out), component)
        assert study.control_2d(*args, scale) == 16
        found, other = [], 0.0
        with SkeletonCache(truth) as t, SkeletonCache(out) as c:
            assert c.attrs["groundtruth_2d"] == "image" and "+2d-" in c.attrs["pose_source"]
            for key in t.keys():
                height = t.meta(key)["frame_size"][0]
                a = t.read(key, ("joints14", "joints14_2d"))
                b = c.read(key, ("joints14", "joints14_2d"))
                found.append((b["joints14_2d"] - a["joints14_2d"]) * height)
                other = max(other, float(np.abs(b["joints14"] - a["joints14"]).max()))
        return np.stack(found), other

    none, other = offsets("bias", 0.0)
    assert np.abs(none).max() < 1e-4 and other == 0.0
    bias, other = offsets("bias", 1.0)
    assert other == 0.0 and np.abs(bias - bias[:, :1]).max() < 1e-3  # one offset a tracklet
    limbs = [j for j in range(14) if j not in (8, 9)]  # the hips carry the re-centring
    size = np.sqrt((bias[:, 0, limbs] ** 2).sum(-1).mean())
    expected = np.sqrt((measured["bias"][limbs] ** 2).mean())
    assert 0.5 * expected < size < 2.0 * expected
    jitter, _ = offsets("jitter", 1.0)
    assert np.abs(jitter - jitter[:, :1]).max() > 1.0  # fresh noise every frame

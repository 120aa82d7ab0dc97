"""tools/landmark_study.py: the set's plan re-created from its config.toml projects the true
joints where the frames show them (checked against the saved 3D truth and MediaPipe's head)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.synth.camera import rotate
from pipeline.synth.layout import GT_FILE

TOOL = Path(__file__).resolve().parents[1] / "tools" / "landmark_study.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("landmark_study", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_the_recreated_plan_projects_the_saved_truth(study, synthetic_root):
    plan = study.set_plan(synthetic_root)
    keys = sorted(
        str(p.parent.relative_to(synthetic_root)) for p in synthetic_root.glob(f"*/*/{GT_FILE}")
    )
    assert sorted(spec.key for spec in plan.tracklets) == keys
    width, height = plan.size
    for spec in plan.tracklets:
        joints, cameras = study.recreated(plan, spec)
        seen = rotate(
            joints, cameras[0].rotation
        )  # as the render saves it: camera axes, hip-centred
        seen -= (seen[:, 8:9] + seen[:, 9:10]) / 2
        np.testing.assert_allclose(seen, np.load(synthetic_root / spec.key / GT_FILE), atol=1e-5)
        pixels = study.projected_truth(plan, spec)
        truth = np.load(synthetic_root / spec.key / GT_FILE)[..., :2]  # camera axes, metres
        assert ((pixels >= 0) & (pixels < [width, height])).all()
        for frame_pixels, frame_truth in zip(pixels, truth):
            # A pinhole camera at 4–9 m is close to a scaled orthographic one: what is left after
            # the best scale and shift is perspective, ≤ 8 px here (the feet, far below the
            # optical axis); another tracklet's truth leaves ≥ 30 px.
            design = np.concatenate([frame_truth, np.ones((14, 1))], axis=1)
            for axis in range(2):
                coef, *_ = np.linalg.lstsq(design[:, [axis, 2]], frame_pixels[:, axis], rcond=None)
                residual = frame_pixels[:, axis] - design[:, [axis, 2]] @ coef
                assert np.abs(residual).max() < 0.06 * height


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

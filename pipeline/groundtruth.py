"""The ground-truth pose source (`preprocess.pose_source = "groundtruth"`): the synthetic set's
rendered joints (`<tracklet>/gt_joints14.npy`, (T, 14, 3) hip-centred metres in MediaPipe's world
axes) written into the same cache schema as MediaPipe's estimates.

It is the positive control: on identical frames and splits, it shows what the model does with
perfect skeletons, so the gap to the MediaPipe cache is what pose estimation costs. Only a set
made by `asgl-pipeline synth` has these files, so any other root is refused.

Fields MediaPipe alone produces (33 landmarks, visibility) are zeros; `present` is all true;
`joints14_2d` is the orthographic (x, y) of the ground truth (hip-centred, metres), the 2D view
the Table 5 ablation needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import skeleton
from pipeline.synth.layout import GT_FILE

# "skeletons": the joints of a skeleton-sequence dataset's files (pipeline/layouts/skeletons.py).
POSE_SOURCES = ("mediapipe", "groundtruth", "skeletons")
SYNTH_MARKER = "synth_meta.json"  # written by `asgl-pipeline synth` at the root of every set


def check_root(root: str | Path) -> None:
    """ValueError with what to do unless `root` is a synthetic set with ground-truth joints."""
    root = Path(root)
    if not (root / SYNTH_MARKER).is_file():
        raise ValueError(
            f"`preprocess.pose_source` groundtruth needs a synthetic set made by `asgl-pipeline synth` "
            f"(it has ground-truth joints, {GT_FILE}); {root.absolute()} is not one (no "
            f"{SYNTH_MARKER}) — set `preprocess.pose_source` to mediapipe for real data"
        )


def groundtruth_arrays(
    gt_joints: np.ndarray,
    frame_size: tuple[int, int],
    normalisation: str,
    present: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """(T, 14, 3) ground-truth joints → the cache's arrays (schema of pipeline/cache.py);
    `present` defaults to every frame (skeleton files may lack some, already filled in)."""
    gt = np.asarray(gt_joints, dtype=np.float32)
    if gt.ndim != 3 or gt.shape[1:] != (skeleton.NUM_JOINTS, 3) or not len(gt):
        raise ValueError(f"ground-truth joints must be (T, 14, 3), got {gt.shape}")
    count = len(gt)
    return {
        "world33": np.zeros((count, 33, 3), dtype=np.float32),
        "image33": np.zeros((count, 33, 3), dtype=np.float32),
        "visibility": np.zeros((count, 33), dtype=np.float32),
        "present": np.ones(count, dtype=bool) if present is None else np.asarray(present, bool),
        "joints14": skeleton.normalise(gt, frame_size, mode=normalisation),
        "joints14_2d": skeleton.normalise(gt[..., :2], frame_size, mode="none"),
    }


def read_groundtruth(folder: str | Path) -> np.ndarray:
    """The tracklet folder's (T, 14, 3) joints; OSError/ValueError when missing or unreadable."""
    return np.load(Path(folder) / GT_FILE, allow_pickle=False)

"""The ground-truth pose source (`preprocess.pose_source = "groundtruth"`): the synthetic set's
rendered joints (`<tracklet>/gt_joints14.npy`, (T, 14, 3) hip-centred metres in MediaPipe's world
axes) written into the same cache schema as MediaPipe's estimates.

It is the positive control: on identical frames and splits, it shows what the model does with
perfect skeletons, so the gap to the MediaPipe cache is what pose estimation costs. Only a set
made by `asgl-pipeline synth` has these files, so any other root is refused.

Fields MediaPipe alone produces (33 landmarks, visibility) are zeros; `present` is all true;
`joints14_2d` (the Table 5 ablation's 2D pose) is the truth where the frames show it
(`gt_joints14_2d.npy`, pixels), in the units MediaPipe's image landmarks are cached in (frame
heights, hip-centred), so a 2D model sees what a perfect 2D estimator would give: perspective
and framing included, absolute size lost. Where there is no image (skeleton files, the
noise-model controls of `pose-error`), `joints14_2d` is the orthographic (x, y) of the 3D joints
(hip-centred metres).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import skeleton
from pipeline.synth.layout import GT_FILE, GT_IMAGE_FILE

# "skeletons": the joints of a skeleton-sequence dataset's files (pipeline/layouts/skeletons.py).
POSE_SOURCES = ("mediapipe", "groundtruth", "skeletons")
# A ground-truth cache's `groundtruth_2d` attribute: its 2D joints are the true joints in the frames.
IMAGE_TRUTH = "image"
SYNTH_MARKER = "synth_meta.json"  # written by `asgl-pipeline synth` at the root of every set


def check_root(root: str | Path) -> None:
    """ValueError with what to do unless `root` is a synthetic set with ground-truth joints, 3D
    and in the image (sets rendered before 2026-12-07 have only the 3D ones)."""
    root = Path(root)
    if not (root / SYNTH_MARKER).is_file():
        raise ValueError(
            f"`preprocess.pose_source` groundtruth needs a synthetic set made by `asgl-pipeline synth` "
            f"(it has ground-truth joints, {GT_FILE}); {root.absolute()} is not one (no "
            f"{SYNTH_MARKER}) — set `preprocess.pose_source` to mediapipe for real data"
        )
    first = next(root.glob(f"*/*/{GT_FILE}"), None)
    if first is not None and not (first.parent / GT_IMAGE_FILE).is_file():
        raise ValueError(
            f"{root.absolute()} was rendered before the synth stage saved the true joints in the "
            f"image ({first.parent / GT_IMAGE_FILE} is missing) — render it again with "
            "`asgl-pipeline synth --overwrite` (same settings, same frames)"
        )


def groundtruth_arrays(
    gt_joints: np.ndarray,
    frame_size: tuple[int, int],
    normalisation: str,
    present: np.ndarray | None = None,
    image_joints: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """(T, 14, 3) ground-truth joints → the cache's arrays (schema of pipeline/cache.py);
    `present` defaults to every frame (skeleton files may lack some, already filled in);
    `image_joints` (T, 14, 2) the same joints in pixels, when there is an image."""
    gt = np.asarray(gt_joints, dtype=np.float32)
    if gt.ndim != 3 or gt.shape[1:] != (skeleton.NUM_JOINTS, 3) or not len(gt):
        raise ValueError(f"ground-truth joints must be (T, 14, 3), got {gt.shape}")
    count = len(gt)
    if image_joints is None:
        flat = gt[..., :2]
    else:  # pixels → frame heights, as `extraction.image_joints_2d` caches MediaPipe's
        flat = np.asarray(image_joints, dtype=np.float32) / np.float32(frame_size[0])
        if flat.shape != (count, skeleton.NUM_JOINTS, 2):
            raise ValueError(f"image joints must be ({count}, 14, 2), got {flat.shape}")
    return {
        "world33": np.zeros((count, 33, 3), dtype=np.float32),
        "image33": np.zeros((count, 33, 3), dtype=np.float32),
        "visibility": np.zeros((count, 33), dtype=np.float32),
        "present": np.ones(count, dtype=bool) if present is None else np.asarray(present, bool),
        "joints14": skeleton.normalise(gt, frame_size, mode=normalisation),
        "joints14_2d": skeleton.normalise(flat, frame_size, mode="none"),
    }


def read_groundtruth(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The tracklet folder's joints, (T, 14, 3) metres and (T, 14, 2) pixels; OSError/ValueError
    when missing or unreadable."""
    folder = Path(folder)
    return (
        np.load(folder / GT_FILE, allow_pickle=False),
        np.load(folder / GT_IMAGE_FILE, allow_pickle=False),
    )

"""How well MediaPipe sees the synthetic people: detection rate and pose accuracy against the
ground truth (PA-MPJPE: mean per-joint error after a similarity, i.e. Procrustes, alignment of
each frame's 14 mapped world landmarks onto the ground-truth joints)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.pose import PoseEstimator
from pipeline.skeleton import JOINT_NAMES, LEFT_RIGHT_PAIRS, map_33_to_14

YAW_BUCKETS = (
    ("frontal", 0, 30),
    ("front-oblique", 30, 75),
    ("side", 75, 105),
    ("back-oblique", 105, 150),
    ("back", 150, 180.01),
)


def similarity_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(J, 3) `source` rotated, scaled and translated to best fit `target` (Umeyama 1991;
    proper rotations only, no reflection)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(t.T @ s)
    d = np.sign(np.linalg.det(u @ vt))
    correction = np.diag([1.0, 1.0, d])
    rotation = u @ correction @ vt
    var_s = (s**2).sum()
    scale = (sigma * np.diag(correction)).sum() / var_s if var_s > 0 else 1.0
    return scale * s @ rotation.T + mu_t


def aligned_residuals(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T, J, 3) predictions and ground truth → (T, J, 3) residual vectors after per-frame
    similarity alignment (same units and axes as `gt`)."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    aligned = np.stack([similarity_align(p, g) for p, g in zip(pred, gt)]) if len(pred) else pred
    return aligned - gt


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T, J) per-joint errors after per-frame similarity alignment; the mean is PA-MPJPE."""
    return np.linalg.norm(aligned_residuals(pred, gt), axis=-1)


def swap_sides(joints: np.ndarray) -> np.ndarray:
    """(..., 14, 3) joints with left and right labels exchanged (positions unchanged)."""
    order = list(range(len(JOINT_NAMES)))
    for left, right in LEFT_RIGHT_PAIRS:
        order[left], order[right] = right, left
    return joints[..., order, :]


def read_frames(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(path)) for path in sorted(folder.glob("*.jpg"))]


def measure_tracklets(folders: list[Path], gt_file: str, verbose: bool = False) -> list[dict]:
    """Run MediaPipe (video mode, reset per tracklet) over each folder's frames and compare
    with `folder/gt_file`. One estimator for the whole list (call once per worker)."""
    results = []
    with PoseEstimator(verbose=verbose) as estimator:
        for folder in folders:
            out = estimator.process_sequence(read_frames(folder))
            present = out["present"]
            gt = np.load(folder / gt_file)
            pred = map_33_to_14(out["world33"][present])
            residuals = aligned_residuals(pred, gt[present])
            # A left/right mix-up (a back view taken for a front view, or the reverse) fits
            # the ground truth better once the labels are swapped back.
            swapped = pa_mpjpe(swap_sides(pred), gt[present])
            results.append(
                {
                    "frames": int(len(present)),
                    "detected": int(present.sum()),
                    "residuals": residuals,
                    "swapped": int(
                        (swapped.mean(1) < np.linalg.norm(residuals, axis=-1).mean(1)).sum()
                    ),
                }
            )
    return results


def _residuals(rows: list[dict]) -> np.ndarray:
    parts = [r["residuals"] for r in rows if len(r["residuals"])]
    return np.concatenate(parts) if parts else np.zeros((0, len(JOINT_NAMES), 3))


def summarise(results: list[dict], yaws: list[float]) -> dict:
    """Detection rate and PA-MPJPE (mm), overall, per yaw bucket and per joint, and the RMS
    residual per camera axis (z is depth, the axis a single camera sees worst)."""

    def block(rows: list[dict]) -> dict:
        frames = sum(r["frames"] for r in rows)
        detected = sum(r["detected"] for r in rows)
        errors = np.linalg.norm(_residuals(rows), axis=-1)
        swapped = sum(r["swapped"] for r in rows)
        return {
            "tracklets": len(rows),
            "frames": frames,
            "detected": detected,
            "detection_rate": round(detected / frames, 4) if frames else 0.0,
            "pa_mpjpe_mm": round(float(errors.mean() * 1000), 1) if errors.size else None,
            "left_right_swapped_rate": round(swapped / detected, 4) if detected else None,
        }

    summary = block(results)
    residuals = _residuals(results)
    if len(residuals):
        per_joint = np.linalg.norm(residuals, axis=-1).mean(0) * 1000
        summary["pa_mpjpe_mm_per_joint"] = {
            name: round(float(e), 1) for name, e in zip(JOINT_NAMES, per_joint)
        }
        rms = np.sqrt((residuals**2).mean(axis=(0, 1))) * 1000
        summary["pa_rms_mm_per_axis"] = {
            axis: round(float(v), 1) for axis, v in zip(("x", "y", "z_depth"), rms)
        }
    summary["by_view"] = {}
    for name, low, high in YAW_BUCKETS:
        rows = [r for r, yaw in zip(results, yaws) if low <= yaw < high]
        if rows:
            summary["by_view"][name] = block(rows)
    return summary

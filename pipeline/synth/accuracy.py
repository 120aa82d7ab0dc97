"""How well MediaPipe sees the synthetic people: detection rate and pose accuracy against the
ground truth (PA-MPJPE: mean per-joint error after a similarity, i.e. Procrustes, alignment of
each frame's 14 mapped world landmarks onto the ground-truth joints)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.skeleton import JOINT_NAMES, map_33_to_14

YAW_BUCKETS = (("frontal", 0, 30), ("front-oblique", 30, 75), ("side", 75, 105),
               ("back-oblique", 105, 150), ("back", 150, 180.01))  # fmt: skip


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


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T, J, 3) predictions and ground truth → (T, J) per-joint errors after per-frame
    similarity alignment (same units as `gt`)."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    aligned = np.stack([similarity_align(p, g) for p, g in zip(pred, gt)]) if len(pred) else pred
    return np.linalg.norm(aligned - gt, axis=-1)


def read_frames(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(path)) for path in sorted(folder.glob("*.jpg"))]


def measure_tracklets(folders: list[Path], gt_file: str) -> list[dict]:
    """Run MediaPipe (video mode, reset per tracklet) over each folder's frames and compare
    with `folder/gt_file`. One estimator for the whole list (call once per worker)."""
    from pipeline.pose import PoseEstimator

    results = []
    with PoseEstimator() as estimator:
        for folder in folders:
            out = estimator.process_sequence(read_frames(folder))
            present = out["present"]
            gt = np.load(folder / gt_file)
            errors = pa_mpjpe(map_33_to_14(out["world33"][present]), gt[present])
            results.append(
                {"frames": int(len(present)), "detected": int(present.sum()), "errors": errors}
            )
    return results


def summarise(results: list[dict], yaws: list[float]) -> dict:
    """Detection rate and PA-MPJPE (mm), overall, per yaw bucket and per joint."""

    def block(rows: list[dict]) -> dict:
        frames = sum(r["frames"] for r in rows)
        detected = sum(r["detected"] for r in rows)
        errors = [r["errors"] for r in rows if len(r["errors"])]
        errors = np.concatenate(errors) if errors else np.zeros((0, len(JOINT_NAMES)))
        return {
            "tracklets": len(rows),
            "frames": frames,
            "detected": detected,
            "detection_rate": detected / frames if frames else 0.0,
            "pa_mpjpe_mm": float(errors.mean() * 1000) if errors.size else None,
        }

    summary = block(results)
    errors = [r["errors"] for r in results if len(r["errors"])]
    if errors:
        per_joint = np.concatenate(errors).mean(0) * 1000
        summary["pa_mpjpe_mm_per_joint"] = {
            n: round(float(e), 1) for n, e in zip(JOINT_NAMES, per_joint)
        }
    summary["by_view"] = {}
    for name, low, high in YAW_BUCKETS:
        rows = [r for r, yaw in zip(results, yaws) if low <= yaw < high]
        if rows:
            summary["by_view"][name] = block(rows)
    return summary

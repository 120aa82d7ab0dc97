"""The 14-joint skeleton (SPEC §4.1–4.2): joint order, bones, MediaPipe 33 → 14 mapping,
normalisation (paper Eq. 1), gap filling and left/right flipping. The graph the models derive from
the bones (adjacency, hop distances, partitions) is `pipeline.models.graph.SkeletonGraph`.

Arrays are (T, J, C) float32 throughout: T frames, J joints, C coordinates (3, or 2 for image x, y).
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "head",
    "neck",
    "l_shoulder",
    "r_shoulder",
    "l_elbow",
    "r_elbow",
    "l_hand",
    "r_hand",
    "l_hip",
    "r_hip",
    "l_knee",
    "r_knee",
    "l_foot",
    "r_foot",
)
NUM_JOINTS = len(JOINT_NAMES)

# Which MediaPipe landmarks each of our joints averages (neck = mid-shoulder, the usual 14th).
MEDIAPIPE_LANDMARKS: tuple[tuple[int, ...], ...] = (
    tuple(range(0, 11)),
    (11, 12),
    (11,),
    (12,),
    (13,),
    (14,),
    (15, 17, 19, 21),
    (16, 18, 20, 22),
    (23,),
    (24,),
    (25,),
    (26,),
    (27, 29, 31),
    (28, 30, 32),
)

EDGES: tuple[tuple[int, int], ...] = (
    (0, 1),
    (1, 2),
    (1, 3),
    (2, 4),
    (4, 6),
    (3, 5),
    (5, 7),
    (2, 8),
    (3, 9),
    (8, 9),
    (8, 10),
    (10, 12),
    (9, 11),
    (11, 13),
)

# Left/right pairs, used to swap joints when a clip is mirrored.
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = ((2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13))
L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 2, 3, 8, 9
NORMALISATION_MODES = ("paper", "none", "unified")


def mapping_matrix() -> np.ndarray:
    """(14, 33) averaging weights so that mapping is one matrix product."""
    matrix = np.zeros((NUM_JOINTS, 33), dtype=np.float32)
    for joint, sources in enumerate(MEDIAPIPE_LANDMARKS):
        matrix[joint, list(sources)] = 1.0 / len(sources)
    return matrix


def map_33_to_14(landmarks33: np.ndarray) -> np.ndarray:
    """(T, 33, C) MediaPipe landmarks → (T, 14, C) joints in our order."""
    landmarks33 = np.asarray(landmarks33, dtype=np.float32)
    if landmarks33.shape[-2] != 33:
        raise ValueError(f"expected 33 landmarks on axis -2, got shape {landmarks33.shape}")
    return np.einsum("jk,...kc->...jc", mapping_matrix(), landmarks33).astype(np.float32)


def hip_centre(joints14: np.ndarray) -> np.ndarray:
    """(T, 14, C) → (T, 1, C), the root joint (mid-hip)."""
    return (joints14[..., L_HIP : L_HIP + 1, :] + joints14[..., R_HIP : R_HIP + 1, :]) / 2.0


def facing_angle(joints14: np.ndarray) -> float:
    """Yaw (radians, about the vertical y axis) of a tracklet's left-right body axis in the x-z
    plane, from right to left hip and right to left shoulder summed over all frames: one angle
    per tracklet, so the sway of the hips within a stride (gait) is kept, and a few frames with
    left and right swapped only shorten the sum. 0 when the axis is undefined."""
    joints14 = np.asarray(joints14, dtype=np.float64)
    lateral = (joints14[..., L_HIP, :] - joints14[..., R_HIP, :]) + (
        joints14[..., L_SHOULDER, :] - joints14[..., R_SHOULDER, :]
    )
    x, z = lateral[..., 0].sum(), lateral[..., 2].sum()
    return float(np.arctan2(z, x)) if np.hypot(x, z) > 0 else 0.0


def rotate_yaw(joints: np.ndarray, angle: float) -> np.ndarray:
    """Rotate (..., 3) points about the vertical y axis so that direction `angle` maps to +x."""
    c, s = np.cos(angle), np.sin(angle)
    out = np.array(joints, dtype=np.float32, copy=True)
    x, z = joints[..., 0], joints[..., 2]
    out[..., 0], out[..., 2] = c * x + s * z, -s * x + c * z
    return out


def normalise(joints14: np.ndarray, frame_size: tuple[int, int], mode: str = "paper") -> np.ndarray:
    """Paper Eq. 1: move the root to the origin, then x /= h, y /= w, z /= h·w.

    `frame_size` is (h, w) of the input frames. Mode `none` keeps hip-centred units (metres for
    world landmarks). Mode `unified` is the paper's "unified view" (§3.2.1, Fig. 2): hip-centred,
    then turned about the vertical axis so that every tracklet's left-right axis lies along +x
    (one canonical facing, whatever the camera saw). 2D input (C = 2) scales x and y only; it has
    no depth to turn, so `unified` only hip-centres it.
    """
    if mode not in NORMALISATION_MODES:
        raise ValueError(f"unknown normalisation mode {mode!r} (known: {NORMALISATION_MODES})")
    centred = np.asarray(joints14, dtype=np.float32) - hip_centre(joints14)
    if mode == "unified" and centred.shape[-1] == 3:
        return rotate_yaw(centred, facing_angle(centred))
    if mode in ("none", "unified"):
        return centred.astype(np.float32)
    h, w = frame_size
    scale = np.array([h, w, h * w][: centred.shape[-1]], dtype=np.float32)
    return (centred / scale).astype(np.float32)


def joint_statistics(sequences) -> tuple[np.ndarray, np.ndarray]:
    """Per-(joint, coordinate) mean and std over every frame of `sequences` ((T, 14, C) arrays),
    for the model's fixed input standardisation (`JointRefinement.set_input_statistics`).

    A nearly constant channel (the hips' height after hip-centring) would have its noise blown up
    to unit scale, so each std is floored at 5 % of its coordinate's median std over the joints;
    a coordinate that never varies keeps std 1."""
    arrays = [np.asarray(s, dtype=np.float64) for s in sequences]
    arrays = [a for a in arrays if len(a)]  # reshape(0, -1) cannot infer a width
    if not arrays:
        raise ValueError("no joints to compute input statistics from")
    frames = np.concatenate([a.reshape(len(a), -1) for a in arrays])
    channels = arrays[0].shape[-1]
    mean = frames.mean(axis=0).reshape(-1, channels)
    std = frames.std(axis=0).reshape(-1, channels)
    floor = 0.05 * np.median(std, axis=0, keepdims=True)
    std = np.maximum(std, floor)
    std[std <= 0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def fill_missing(sequence: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Fill frames where `present` is False by linear interpolation between detected neighbours;
    leading/trailing gaps copy the nearest detected frame. Raises if nothing was detected."""
    sequence = np.asarray(sequence, dtype=np.float32)
    present = np.asarray(present, dtype=bool)
    if not present.any():
        raise ValueError("no frame has a detection; nothing to interpolate from")
    if present.all():
        return sequence.copy()
    t = np.arange(len(present))
    known = t[present]
    flat = sequence.reshape(len(present), -1)
    filled = np.empty_like(flat)
    for column in range(flat.shape[1]):
        # np.interp copies edge values outside [known[0], known[-1]], as SPEC §4.2 asks.
        filled[:, column] = np.interp(t, known, flat[present, column])
    return filled.reshape(sequence.shape)


def flip_joints(joints14: np.ndarray, x_channels: tuple[int, ...] = (0,)) -> np.ndarray:
    """Mirror a hip-centred skeleton horizontally: negate x (every channel in `x_channels`, for
    inputs that join several skeletons) and swap left/right joints.

    Matches a horizontal flip of the frames. Works on numpy arrays or torch tensors of shape
    (..., 14, C)."""
    flipped = joints14.clone() if hasattr(joints14, "clone") else np.array(joints14, copy=True)
    for channel in x_channels:
        flipped[..., channel] = -flipped[..., channel]
    order = list(range(NUM_JOINTS))
    for left, right in LEFT_RIGHT_PAIRS:
        order[left], order[right] = right, left
    return flipped[..., order, :]

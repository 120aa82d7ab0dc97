"""Where a pose estimator loses identity: an estimated skeleton cache compared, tracklet by
tracklet, with the same set's ground truth (`asgl-pipeline pose-error`, issue 22).

The error of every tracklet, e = estimate − truth over its detected frames (metric, hip-centred),
is split into three parts that act differently on identity:
- `bias`: its mean over the tracklet, a constant offset of every joint (a different body);
- `drift`: what a centred moving average of the rest keeps (slow wander within the tracklet);
- `jitter`: what is left (frame-to-frame noise, which averaging over frames removes).
Beside the parts: how far per-tracklet body and gait quantities follow the truth across tracklets
(slope and correlation of estimate on truth: a slope near 0 is shrinkage toward one template), the
share of their variance that is between identities (ICC) for truth and estimate, and checks of our
own path (time alignment, left/right swaps, axes, the 33 → 14 averaging).

`control_joints` adds one measured part back to the truth alone (the noise-model controls), so
the part that destroys identity can be named with a probe and a trained model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.cache import CacheWriter, SkeletonCache, attribute, file_attributes
from pipeline.groundtruth import groundtruth_arrays
from pipeline.probe import PROPORTIONS, bone_lengths, cadence, metric_joints
from pipeline.skeleton import EDGES, JOINT_NAMES, LEFT_RIGHT_PAIRS, facing_angle
from pipeline.transforms import gaussian_at_rms

FACING_BIN = 20  # degrees: bins of the true facing angle for `bias_sources`
DRIFT_WINDOW = 9  # frames: about half a gait cycle at 15 frames/s, so the stride stays in jitter
CONTROL_COMPONENTS = (
    "bias",
    "drift",
    "jitter",
    "drift+jitter",
    "iid",
    "shrinkage",
    "all",
    "facing",  # the bias's mean over tracklets facing the same way (what a view correction removes)
    "bias-facing",  # the rest of the bias: what is particular to the tracklet
    "template",  # every bone at the population's mean length: the body's lengths gone
    # A random offset per tracklet at k × the bias's RMS per joint (its size without its shape):
    # how small a constant error must be for identity to survive (the error budget).
    "offset",
    "offset-0.5",
    "offset-0.25",
    # The motion channel: each tracklet's own temporal mean replaced by the population's, so no
    # per-tracklet constant (body or bias) is left; then with an error component added first.
    "motion",
    "motion+jitter",
    "motion+drift",
    "motion+all",
)
MOTION = "motion"
OFFSET = "offset"
# The bones rebuilt outward from the hips (parent, child). The shoulders close the torso's cycle
# (hips – shoulders – neck), so `with_bone_lengths` places them apart, then the neck.
_TREE = (
    (8, 10),
    (10, 12),
    (9, 11),
    (11, 13),
    (8, 2),
    (9, 3),
)
_FROM_NECK = (
    (1, 0),
    (2, 4),
    (4, 6),
    (3, 5),
    (5, 7),
)
L_KNEE, R_KNEE, L_ELBOW, R_ELBOW = 10, 11, 4, 5
# Pose estimators swap one limb's left and right while the torso stays right (the legs crossing
# in a side view): each limb's swaps are counted apart from the whole body's, on the frames whose
# true left and right joints of the limb are at least LIMB_APART apart (a crossing is no swap).
LIMBS = {"legs": ((L_KNEE, R_KNEE), (12, 13)), "arms": ((L_ELBOW, R_ELBOW), (6, 7))}
LIMB_APART = 0.10  # metres, mean over the limb's joint pairs
VIEW_BINS = (
    (0, 30, "frontal"),
    (30, 75, "front-oblique"),
    (75, 105, "side"),
    (105, 150, "back-oblique"),
    (150, 181, "back"),
)


@dataclass(frozen=True)
class Pair:
    """One tracklet's estimate and truth, both (T, 14, 3) metric and hip-centred."""

    key: str
    pid: str
    clothes: str
    camera: int
    estimate: np.ndarray
    truth: np.ndarray
    present: np.ndarray  # (T,) bool: frames with a detection (the others were interpolated)


@dataclass(frozen=True)
class ErrorParts:
    bias: np.ndarray  # (14, 3)
    drift: np.ndarray  # (T, 14, 3)
    jitter: np.ndarray  # (T, 14, 3)


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0, edges padded with the edge frames."""
    pad = window // 2
    padded = np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], pad, 0)])
    cumulative = np.cumsum(np.concatenate([np.zeros_like(x[:1]), padded]), axis=0)
    return (cumulative[window:] - cumulative[:-window]) / window


def split_error(pair: Pair, window: int = DRIFT_WINDOW) -> ErrorParts:
    """The tracklet's error on every frame split into bias + drift + jitter (they sum to it).
    Bias is the mean over detected frames only: interpolated frames are the estimator's guesses."""
    error = pair.estimate - pair.truth
    bias = error[pair.present].mean(axis=0)
    rest = error - bias
    drift = moving_average(rest, window)
    return ErrorParts(bias, drift, rest - drift)


def icc(values, groups) -> float:
    """One-way intra-class correlation ICC(1): the share of the variance of `values` that lies
    between the groups (identities), with unequal group sizes (k0 of the ANOVA estimator)."""
    values, groups = np.asarray(values, dtype=np.float64), np.asarray(groups)
    labels, counts = np.unique(groups, return_counts=True)
    n, g = len(values), len(labels)
    if g < 2 or n <= g:
        raise ValueError("ICC needs at least two groups and one group with two values")
    means = np.array([values[groups == label].mean() for label in labels])
    between = (counts * (means - values.mean()) ** 2).sum() / (g - 1)
    within = sum(((values[groups == lb] - m) ** 2).sum() for lb, m in zip(labels, means)) / (n - g)
    k0 = (n - (counts**2).sum() / n) / (g - 1)
    denominator = between + (k0 - 1) * within
    return float((between - within) / denominator) if denominator > 0 else 0.0


def agreement(estimate, truth, groups) -> dict[str, float]:
    """How a per-tracklet quantity from the estimate follows the true one across tracklets."""
    estimate, truth = np.asarray(estimate, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    spread = truth.std() > 0 and estimate.std() > 0
    return {
        "corr": float(np.corrcoef(estimate, truth)[0, 1]) if spread else 0.0,
        "slope": float(np.polyfit(truth, estimate, 1)[0]) if truth.std() > 0 else 0.0,
        "icc_truth": icc(truth, groups),
        "icc_estimate": icc(estimate, groups),
        "mean_truth": float(truth.mean()),
        "mean_estimate": float(estimate.mean()),
    }


def explained_share(values: np.ndarray, groups) -> dict[str, float]:
    """How much of the variance of per-tracklet vectors (N, D) their group means explain (R²,
    summed over the dimensions), what as many groups of random members would explain on average
    ((g − 1) / (n − 1), the one-way ANOVA's null expectation) and the share beyond that chance
    ((R² − chance) / (1 − chance), 0 = no more than random groups)."""
    values, groups = (
        np.asarray(values, dtype=np.float64).reshape(len(values), -1),
        np.asarray(groups),
    )
    labels = np.unique(groups)
    n, g = len(values), len(labels)
    if g < 2 or n <= g:
        raise ValueError("explained_share needs at least two groups and one group with two values")
    centred = values - values.mean(0)
    fitted = np.zeros_like(centred)
    for label in labels:
        fitted[groups == label] = centred[groups == label].mean(0)
    share = float((fitted**2).sum() / max((centred**2).sum(), 1e-300))
    chance = (g - 1) / (n - 1)
    return {
        "groups": g,
        "share": share,
        "chance": chance,
        "beyond chance": (share - chance) / (1 - chance),
    }


def bias_sources(pairs: list[Pair]) -> dict[str, dict[str, float]]:
    """What the per-tracklet constant bias follows: the share of its variance (every joint and axis)
    that the tracklet's view, camera, person and outfit explain. The person's share is the
    shrinkage (a template body's bias is template − truth); what none explains is particular to
    the tracklet, a new body each time. Groupings with a single group are left out."""
    bias = np.stack([split_error(p).bias for p in pairs])
    groupings = {
        "view": [view_name(p.truth) for p in pairs],
        # signed: a person walking left and one walking right are seen from opposite sides
        "facing angle, 20° bins": [facing_bin(p.truth) for p in pairs],
        "camera": [p.camera for p in pairs],
        "identity": [p.pid for p in pairs],
        "outfit (identity, clothes)": [f"{p.pid}/{p.clothes}" for p in pairs],
    }
    return {  # a grouping with one group, or none with two members, explains nothing to compare
        name: explained_share(bias, groups)
        for name, groups in groupings.items()
        if 1 < len(set(groups)) < len(groups)
    }


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(T,) angle at b between b→a and b→c, degrees."""
    u, v = a - b, c - b
    cosine = (u * v).sum(-1) / np.maximum(
        np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-9
    )
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def knee_angles(joints: np.ndarray) -> np.ndarray:
    """(T, 2) left and right knee angle (180° = straight leg)."""
    return np.stack(
        [
            _angle(joints[:, 8], joints[:, L_KNEE], joints[:, 12]),
            _angle(joints[:, 9], joints[:, R_KNEE], joints[:, 13]),
        ],
        -1,
    )


def _amplitude(series: np.ndarray) -> float:
    """Robust peak-to-peak: 5th to 95th percentile, averaged over the columns."""
    return float(np.mean(np.percentile(series, 95, axis=0) - np.percentile(series, 5, axis=0)))


def body_quantities(joints: np.ndarray) -> dict[str, float]:
    """Per-tracklet body shape: every bone's median length, stature, the probe's proportions."""
    bones = np.median(bone_lengths(joints), axis=0)
    out = {f"bone {JOINT_NAMES[i]}-{JOINT_NAMES[j]}": float(b) for (i, j), b in zip(EDGES, bones)}
    feet = (joints[:, 12] + joints[:, 13]) / 2
    out["stature (head to feet)"] = float(np.median(np.linalg.norm(joints[:, 0] - feet, axis=-1)))
    for name, (num, den) in PROPORTIONS.items():
        out[name] = float(bones[list(num)].sum() / max(bones[list(den)].sum(), 1e-9))
    return out


def gait_quantities(joints: np.ndarray) -> dict[str, float]:
    """Per-tracklet gait: knee and elbow angle amplitude, arm swing (upper arm against the trunk),
    cadence (cycles per frame), step width (feet apart along the hips' left-right axis)."""
    elbows = np.stack(
        [
            _angle(joints[:, 2], joints[:, L_ELBOW], joints[:, 6]),
            _angle(joints[:, 3], joints[:, R_ELBOW], joints[:, 7]),
        ],
        -1,
    )
    down = (joints[:, 8] + joints[:, 9]) / 2 - joints[:, 1]  # neck → hip centre
    swing = np.stack(
        [
            _angle(joints[:, 4], joints[:, 2], joints[:, 2] + down),
            _angle(joints[:, 5], joints[:, 3], joints[:, 3] + down),
        ],
        -1,
    )
    lateral = joints[:, 8] - joints[:, 9]
    lateral = lateral / np.maximum(np.linalg.norm(lateral, axis=-1, keepdims=True), 1e-9)
    return {
        "knee angle amplitude": _amplitude(knee_angles(joints)),
        "elbow angle amplitude": _amplitude(elbows),
        "arm swing amplitude": _amplitude(swing),
        "cadence": cadence(joints),
        "step width": float(np.median(np.abs(((joints[:, 12] - joints[:, 13]) * lateral).sum(-1)))),
    }


def _rms_cm(parts: list[np.ndarray]) -> np.ndarray:
    """(14,) 3D RMS over every frame (or tracklet) of the arrays, in centimetres."""
    stacked = np.concatenate([p.reshape(-1, p.shape[-2], 3) for p in parts])
    return 100 * np.sqrt((stacked**2).sum(-1).mean(0))


def component_table(pairs: list[Pair], window: int = DRIFT_WINDOW) -> dict[str, dict[str, float]]:
    """Per joint and in total: 3D RMS (cm) of the whole error and of its three parts; bias RMS is
    over tracklets, the others over detected frames. `vertical offset` is the bias's mean y
    (a shared definitional difference, e.g. where a head is put, would show here)."""
    split = [split_error(p, window) for p in pairs]
    error = [(p.estimate - p.truth)[p.present] for p in pairs]
    columns = {
        "total": _rms_cm(error),
        "bias": _rms_cm([s.bias[None] for s in split]),
        "drift": _rms_cm([s.drift[p.present] for s, p in zip(split, pairs)]),
        "jitter": _rms_cm([s.jitter[p.present] for s, p in zip(split, pairs)]),
        "vertical offset": 100 * np.mean([s.bias[:, 1] for s in split], axis=0),
    }
    table = {
        name: {c: float(v[j]) for c, v in columns.items()} for j, name in enumerate(JOINT_NAMES)
    }
    table["all joints"] = {
        c: float(np.sqrt(np.mean(v**2))) if c != "vertical offset" else float(np.mean(v))
        for c, v in columns.items()
    }
    return table


def alignment_checks(pairs: list[Pair], max_lag: int = 4) -> dict:
    """Checks of our own path: the lag at which the estimate's knee angle series best matches the
    truth's (0 = aligned), frames whose error shrinks when the estimate's left and right are
    swapped — the whole body, and each limb alone (`LIMBS`) — per view of the true facing, and
    per-axis slope/correlation of all coordinates."""
    lags, correlations = [], []
    swapped: dict[str, list[float]] = {name: [] for *_, name in VIEW_BINS}
    limbs = {limb: {name: [] for *_, name in VIEW_BINS} for limb in LIMBS}
    for p in pairs:
        est, tru = knee_angles(p.estimate[p.present]), knee_angles(p.truth[p.present])
        for side in range(2):
            a, b = tru[:, side], est[:, side]
            if len(a) > 2 * max_lag + 2 and a.std() > 0 and b.std() > 0:
                scores = [_lagged_corr(a, b, lag) for lag in range(-max_lag, max_lag + 1)]
                lags.append(int(np.argmax(scores)) - max_lag)
                correlations.append(scores[max_lag])
        view = view_name(p.truth)
        swapped[view].append(float(swapped_frames(p, LEFT_RIGHT_PAIRS)[p.present].mean()))
        for limb, limb_pairs in LIMBS.items():
            apart = np.mean(
                [np.linalg.norm(p.truth[:, a] - p.truth[:, b], axis=-1) for a, b in limb_pairs], 0
            )
            judged = p.present & (apart >= LIMB_APART)
            if judged.any():
                limbs[limb][view].append(float(swapped_frames(p, limb_pairs)[judged].mean()))
    est = np.concatenate([p.estimate[p.present] for p in pairs]).reshape(-1, 3)
    tru = np.concatenate([p.truth[p.present] for p in pairs]).reshape(-1, 3)
    axes = {
        axis: {
            "slope": float(np.polyfit(tru[:, a], est[:, a], 1)[0]),
            "corr": float(np.corrcoef(tru[:, a], est[:, a])[0, 1]),
        }
        for a, axis in enumerate("xyz")
    }

    def percent(per_view: dict[str, list[float]]) -> dict:
        return {
            v: {"tracklets": len(s), "percent": 100 * float(np.mean(s)) if s else 0.0}
            for v, s in per_view.items()
        }

    return {
        "knee lag histogram": {str(lag): lags.count(lag) for lag in range(-max_lag, max_lag + 1)},
        "knee series corr median": float(np.median(correlations)) if correlations else 0.0,
        "knee series corr p10": float(np.percentile(correlations, 10)) if correlations else 0.0,
        "left/right swapped frames %": percent(swapped),
        "limb swapped frames %": {limb: percent(per_view) for limb, per_view in limbs.items()},
        "axes": axes,
    }


def swapped_frames(pair: Pair, joint_pairs) -> np.ndarray:
    """(T,) bool: frames whose joints of `joint_pairs` ((left, right), …) are nearer the truth
    with each pair's left and right exchanged."""
    joints = [j for left_right in joint_pairs for j in left_right]
    mirrored = pair.estimate.copy()
    for left, right in joint_pairs:
        mirrored[:, [left, right]] = mirrored[:, [right, left]]
    plain = np.linalg.norm(pair.estimate[:, joints] - pair.truth[:, joints], axis=-1).mean(1)
    flipped = np.linalg.norm(mirrored[:, joints] - pair.truth[:, joints], axis=-1).mean(1)
    return flipped < plain


def _lagged_corr(truth: np.ndarray, estimate: np.ndarray, lag: int) -> float:
    """Correlation of truth[t] with estimate[t + lag] over the overlap."""
    n = len(truth)
    a = truth[max(0, -lag) : n - max(0, lag)]
    b = estimate[max(0, lag) : n - max(0, -lag)]
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0


def view_name(truth: np.ndarray) -> str:
    """Which of VIEW_BINS the true skeleton faces: 0° frontal … 180° back, from its facing
    angle (the left-right axis along +x when the person faces the camera)."""
    yaw = abs(np.degrees(facing_angle(truth)))
    return next(name for low, high, name in VIEW_BINS if low <= yaw < high)


def decompose(pairs: list[Pair], window: int = DRIFT_WINDOW) -> dict:
    """The whole decomposition (JSON-ready): error parts per joint, body and gait agreement."""
    if len(pairs) < 4:
        raise ValueError(f"the decomposition needs several tracklets, got {len(pairs)}")
    groups = [p.pid for p in pairs]

    def table(quantities) -> dict[str, dict[str, float]]:
        est = [quantities(p.estimate[p.present]) for p in pairs]
        tru = [quantities(p.truth[p.present]) for p in pairs]
        return {k: agreement([e[k] for e in est], [t[k] for t in tru], groups) for k in est[0]}

    return {
        "tracklets": len(pairs),
        "identities": len(set(groups)),
        "window": window,
        "error": component_table(pairs, window),
        "body": table(body_quantities),
        "gait": table(gait_quantities),
        "checks": alignment_checks(pairs),
        "bias sources": bias_sources(pairs),
    }


@dataclass(frozen=True)
class NoiseModel:
    """What the controls add back, measured on the estimate/truth pairs."""

    rms: np.ndarray  # (14, 3) RMS of the whole error per joint and axis (the iid jitter's size)
    bone_mean: np.ndarray  # (len(EDGES),) population mean of the tracklets' true bone lengths
    bone_slope: np.ndarray  # (len(EDGES),) slope of estimated on true bone length (shrinkage)
    facing_bias: dict[int, np.ndarray]  # facing bin → (14, 3) mean bias of its tracklets
    mean_pose: np.ndarray  # (14, 3) the population's mean of the tracklets' mean true pose
    bias_rms: np.ndarray  # (14,) 3D RMS of the per-tracklet bias of each joint over tracklets


def facing_bin(truth: np.ndarray) -> int:
    """The FACING_BIN-degree bin of the true skeleton's signed facing angle."""
    return int((np.degrees(facing_angle(truth)) + 180) // FACING_BIN)


def noise_model(pairs: list[Pair]) -> NoiseModel:
    error = np.concatenate([(p.estimate - p.truth)[p.present] for p in pairs])
    true_bones = np.array([np.median(bone_lengths(p.truth[p.present]), 0) for p in pairs])
    est_bones = np.array([np.median(bone_lengths(p.estimate[p.present]), 0) for p in pairs])
    slopes = [np.polyfit(true_bones[:, b], est_bones[:, b], 1)[0] for b in range(len(EDGES))]
    bins = np.array([facing_bin(p.truth) for p in pairs])
    biases = np.stack([split_error(p).bias for p in pairs])
    facing = {int(b): biases[bins == b].mean(0) for b in np.unique(bins)}
    mean_pose = np.mean([p.truth[p.present].mean(0) for p in pairs], axis=0)
    bias_rms = _rms_cm(list(biases[:, None])) / 100  # the decomposition's bias column, in metres
    return NoiseModel(
        np.sqrt((error**2).mean(0)),
        true_bones.mean(0),
        np.array(slopes),
        facing,
        mean_pose,
        bias_rms,
    )


def _edge_index(a: int, b: int) -> int:
    return next(k for k, edge in enumerate(EDGES) if set(edge) == {a, b})


TORSO_STEPS = 100  # alternating projections that close the torso (converge to ~1e-9 m)


def _close_torso(hips_l, hips_r, left, right, left_length, right_length, width) -> tuple:
    """Shoulders moved until they are `left_length` / `right_length` from their hips and `width`
    apart: the torso (hips, shoulder–hip bones, shoulders) is a cycle, so its bones cannot all be
    set one after the other; alternating projections onto each constraint, from the shoulders'
    first placement, converge to the nearest torso that has them all."""
    for _ in range(TORSO_STEPS):
        axis = right - left
        apart = np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
        shift = (apart - width) / apart * axis / 2
        left, right = left + shift, right - shift
        for shoulder, hip, length in ((left, hips_l, left_length), (right, hips_r, right_length)):
            arm = shoulder - hip
            shoulder[...] = hip + arm * length / np.maximum(
                np.linalg.norm(arm, axis=-1, keepdims=True), 1e-12
            )
    return left, right


def with_bone_lengths(joints: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(T, 14, 3) hip-centred joints rebuilt from the hip centre with every bone scaled by its
    factor ((len(EDGES),) or (T, len(EDGES))): legs along `_TREE`, the torso closed with its
    shoulder width at the two neck bones' new sum (`_close_torso`), the neck on the shoulder line
    between them (as our 14-joint skeleton defines it, the shoulders' midpoint when the two are
    equal), head and arms from there; directions kept otherwise."""
    factors = np.broadcast_to(factors, (len(joints), len(EDGES)))

    def scale(a: int, b: int) -> np.ndarray:
        return factors[:, [_edge_index(a, b)]]

    def length(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(joints[:, b] - joints[:, a], axis=-1, keepdims=True) * scale(a, b)

    def follow(bones) -> None:
        for parent, child in bones:
            out[:, child] = out[:, parent] + (joints[:, child] - joints[:, parent]) * scale(
                parent, child
            )

    out = np.empty_like(joints)
    half_hips = (joints[:, 8] - joints[:, 9]) / 2 * scale(8, 9)
    centre = (joints[:, 8] + joints[:, 9]) / 2
    out[:, 8], out[:, 9] = centre + half_hips, centre - half_hips
    follow(_TREE)
    to_left, to_right = length(1, 2), length(1, 3)
    out[:, 2], out[:, 3] = _close_torso(
        out[:, 8], out[:, 9], out[:, 2], out[:, 3], length(2, 8), length(3, 9), to_left + to_right
    )
    out[:, 1] = out[:, 2] + (out[:, 3] - out[:, 2]) * to_left / (to_left + to_right)
    follow(_FROM_NECK)
    return out


def control_joints(
    pair: Pair,
    component: str,
    model: NoiseModel,
    rng: np.random.Generator,
    window: int = DRIFT_WINDOW,
) -> np.ndarray:
    """The tracklet's true joints with one measured error component added back alone:
    `bias`, `drift`, `jitter`, `drift+jitter` (the real error without its bias), `all` (the
    whole real error: the estimate again), `iid` (Gaussian noise per frame at the error's RMS of
    each joint and axis), `shrinkage` (every bone length pulled toward the population mean with
    the measured slope of estimate on truth, nothing else changed), `template` (every bone at
    the population mean), `facing` (the mean bias of the tracklets facing the same way: the
    view's share of the bias), `bias-facing` (the rest of the bias, particular to the tracklet);
    `offset` / `offset-K`: a random constant per tracklet, Gaussian per joint and axis at (K ×)
    the bias's measured 3D RMS of each joint; `motion` and `motion+COMPONENT`: the truth (with
    that component added) whose own temporal mean over detected frames is replaced by the
    population's mean pose."""
    if component not in CONTROL_COMPONENTS:
        raise ValueError(f"unknown control {component!r} (known: {', '.join(CONTROL_COMPONENTS)})")
    if component.startswith(MOTION):
        added = component.removeprefix(MOTION).removeprefix("+")
        joints = control_joints(pair, added, model, rng, window) if added else pair.truth
        return joints - joints[pair.present].mean(0) + model.mean_pose
    truth = pair.truth
    if component == "iid":
        return truth + rng.normal(size=truth.shape) * model.rms
    if component.startswith(OFFSET):
        scale = float(component.removeprefix(OFFSET).removeprefix("-") or 1.0)
        return truth + gaussian_at_rms(rng, 1, scale * model.bias_rms)
    if component in ("shrinkage", "template"):
        lengths = np.median(bone_lengths(truth), axis=0)
        slope = model.bone_slope if component == "shrinkage" else 0.0
        target = model.bone_mean + slope * (lengths - model.bone_mean)
        return with_bone_lengths(truth, target / np.maximum(lengths, 1e-9))
    parts = split_error(pair, window)
    if component in ("facing", "bias-facing"):
        facing = model.facing_bias[facing_bin(truth)]
        return truth + (facing if component == "facing" else parts.bias - facing)[None]
    added = {
        "bias": parts.bias[None],
        "drift": parts.drift,
        "jitter": parts.jitter,
        "drift+jitter": parts.drift + parts.jitter,
        "all": parts.bias[None] + parts.drift + parts.jitter,
    }[component]
    return truth + added


def read_pairs(estimate: SkeletonCache, truth: SkeletonCache) -> list[Pair]:
    """Every tracklet in both caches as a Pair of metric, hip-centred joints. The caches must
    share a normalisation that keeps the camera's axes (`paper` or `none`: `unified` turns each
    skeleton by its own estimated facing, so estimate and truth would not share axes)."""
    modes = {str(c.attrs.get("normalisation", "paper")) for c in (estimate, truth)}
    if len(modes) != 1 or modes & {"unified"}:
        raise ValueError(
            f"the caches' normalisations are {sorted(modes)}; compare two caches built with the "
            "same `paper` or `none` normalisation"
        )
    (mode,) = modes
    pairs = []
    for key in estimate.keys():
        if key not in truth:
            continue
        meta = estimate.meta(key)
        arrays = estimate.read(key, ("joints14", "present"))
        size = meta.get("frame_size", (1, 1))
        true = metric_joints(truth.read(key, ("joints14",))["joints14"], size, mode)
        est = metric_joints(arrays["joints14"], size, mode)
        if len(true) != len(est):
            raise ValueError(f"{key}: {len(est)} estimated frames but {len(true)} true ones")
        pairs.append(
            Pair(
                key,
                str(meta["pid"]),
                str(meta["clothes"]),
                int(meta["camera"]),
                est,
                true,
                np.asarray(arrays["present"], dtype=bool),
            )
        )
    return pairs


def write_control(
    pairs: list[Pair],
    component: str,
    truth: SkeletonCache,
    out: Path,
    seed: int = 0,
    overwrite: bool = False,
) -> int:
    """A ground-truth cache with one error component added back (`control_joints`), in the
    truth cache's schema, normalisation and labels; its pose_source says which component, so the
    report keeps its runs apart. Returns the number of tracklets written."""
    model, rng = noise_model(pairs), np.random.default_rng(seed)
    attrs = dict(truth.attrs)
    mode = str(attrs.get("normalisation", "paper"))
    source = f"{attribute(attrs, 'pose_source')}+{component}"
    file_attrs = file_attributes(
        str(attrs["dataset"]),
        str(attrs["root"]),
        mode,
        int(attrs.get("model_complexity", 1)),
        source,
    )
    with CacheWriter(out, file_attrs, overwrite=overwrite) as writer:
        for pair in pairs:
            if writer.has(pair.key):
                continue
            meta = truth.meta(pair.key)
            joints = control_joints(pair, component, model, rng).astype(np.float32)
            writer.write(pair.key, groundtruth_arrays(joints, meta["frame_size"], mode), meta)
    return len(pairs)


def format_decomposition(record: dict) -> str:
    """The decomposition as plain-text tables (what the stage prints)."""
    lines = [f"{'joint':<16}{'total':>8}{'bias':>8}{'drift':>8}{'jitter':>8}{'y offset':>10}  (cm)"]
    for joint, row in record["error"].items():
        lines.append(
            f"{joint:<16}"
            + "".join(f"{row[c]:>8.1f}" for c in ("total", "bias", "drift", "jitter"))
            + f"{row['vertical offset']:>10.1f}"
        )
    for section in ("body", "gait"):
        lines.append(
            f"\n{section + ' quantity':<34}{'corr':>6}{'slope':>7}{'ICC truth':>11}{'ICC est.':>10}{'mean truth / est.':>20}"
        )
        for name, row in record[section].items():
            lines.append(
                f"{name:<34}{row['corr']:>6.2f}{row['slope']:>7.2f}{row['icc_truth']:>11.2f}"
                f"{row['icc_estimate']:>10.2f}{row['mean_truth']:>12.3f} / {row['mean_estimate']:.3f}"
            )
    lines.append(
        "\nper-tracklet bias, share of its variance explained by (random groups as many / beyond):"
    )
    for name, row in record.get("bias sources", {}).items():
        lines.append(
            f"  {name:<28}{row['groups']:>5} groups {100 * row['share']:>6.1f} %"
            f"  ({100 * row['chance']:.1f} % / {100 * row['beyond chance']:+.1f} %)"
        )
    checks = record["checks"]
    lines.append(
        f"\nknee angle series, estimate vs truth: corr median {checks['knee series corr median']:.2f} "
        f"(10th percentile {checks['knee series corr p10']:.2f}); best lag (frames): "
        + ", ".join(f"{lag}: {n}" for lag, n in checks["knee lag histogram"].items())
    )
    lines.append(
        "frames better with left/right swapped: "
        + ", ".join(
            f"{view} {v['percent']:.1f} % ({v['tracklets']})"
            for view, v in checks["left/right swapped frames %"].items()
        )
    )
    for limb, per_view in checks.get("limb swapped frames %", {}).items():
        lines.append(
            f"{limb} alone better swapped (left and right ≥ {100 * LIMB_APART:.0f} cm apart): "
            + ", ".join(f"{view} {v['percent']:.1f} %" for view, v in per_view.items())
        )
    lines.append(
        "axes, estimate on truth: "
        + ", ".join(
            f"{axis} slope {v['slope']:.2f} corr {v['corr']:.2f}"
            for axis, v in checks["axes"].items()
        )
    )
    return "\n".join(lines)
